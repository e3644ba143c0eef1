/**
 * A database that is unavailable for now (stopped, locked past its time-out, out of space) is a
 * 503 with Retry-After on every route that needs it, logged once per outage, while the key
 * documents go on serving from memory; once it is back, so is the service, without a restart.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createOutageLog, DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable, OUTAGE_QUIET_MS } from '../src/database/outage.js';
import { SQLITE_BUSY_TIMEOUT_MS } from '../src/database/connection.js';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { basic, readyApp, temporaryDirectory } from './helpers.js';
import { FORM, registerClient } from './oauth-helpers.js';
import { startServer, type RunningServer } from './server-process.js';
import { startOwnPostgres } from './throwaway-services.js';
import { SCOPES_REFRESH_MS } from '../routes/discovery.js';

const SQLite = await loadSqliteDriver();
const UNAVAILABLE_PREFIX = 'the database is unavailable';
const RECOVERED_MESSAGE = 'the database is available again';

const withCode = (code: string, message = 'failed') => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it.each([
    ['SQLite busy past its time-out', withCode('SQLITE_BUSY')],
    ['SQLite out of space', withCode('SQLITE_FULL')],
    ['SQLite failing to write', withCode('SQLITE_IOERR_WRITE')],
    ['SQLite made read-only', withCode('SQLITE_READONLY')],
    ['PostgreSQL refusing connections', withCode('ECONNREFUSED')],
    ['PostgreSQL shutting down', withCode('57P01')],
    ['PostgreSQL out of disk', withCode('53100')],
    ['PostgreSQL with too many connections', withCode('53300')],
    ['a PostgreSQL connection exception', withCode('08006')],
    ['a PostgreSQL lock wait past lock_timeout', withCode('55P03')],
    ['a PostgreSQL standby taking a write', withCode('25006')],
    ['the connection pg lost', new Error('Connection terminated unexpectedly')],
    ['no connection from the pool in time', new Error('timeout exceeded when trying to connect')],
    ['a cause that is unavailable', new Error('cannot record', { cause: withCode('SQLITE_FULL') })],
    ['a query on a client whose connection broke', new Error('Client has encountered a connection error and is not queryable')],
    ['a PostgreSQL socket gone with its server', Object.assign(withCode('ENOENT', 'connect ENOENT /run/postgresql/.s.PGSQL.5432'), { syscall: 'connect' })],
  ])('says yes for %s', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a constraint violated', withCode('SQLITE_CONSTRAINT_UNIQUE')],
    ['a PostgreSQL unique violation', withCode('23505')],
    ['a PostgreSQL syntax error', withCode('42601')],
    ['a PostgreSQL protocol violation, such as too many parameters', withCode('08P01')],
    ['a file that is not there', Object.assign(withCode('ENOENT'), { syscall: 'open' })],
    ['a missing table', withCode('SQLITE_ERROR', 'no such table: auth_logs')],
    ['an error of ours', new Error('the keys cannot be loaded')],
    ['something not an error', 'SQLITE_FULL'],
  ])('says no for %s', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

describe('createOutageLog', () => {
  it('logs the first failure of an outage, counts the rest, and ends it when something that failed succeeds', () => {
    const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
    const record = (level: string) => (fields: Record<string, unknown>, message: string) => lines.push({ level, fields, message });
    const log = { error: record('error'), warn: record('warn') } as unknown as Parameters<typeof createOutageLog>[0];
    let now = 1000;
    const outages = createOutageLog(log, { now: () => now });

    outages.succeeded('POST /auth');
    expect(outages.active).toBe(false);
    outages.failed(withCode('SQLITE_FULL'), 'POST /auth');
    outages.failed(withCode('SQLITE_FULL'), 'key sync');
    outages.failed(withCode('SQLITE_FULL'), 'POST /auth');
    // Reads still work on a full disk: what never failed ends nothing.
    outages.succeeded('GET /users/me');
    expect(outages.active).toBe(true);
    expect(lines.map(({ level, fields, message }) => [level, fields.source, message])).toEqual([['error', 'POST /auth', expect.stringMatching(`^${UNAVAILABLE_PREFIX}`)]]);

    now = 3500;
    outages.succeeded('key sync');
    outages.succeeded('POST /auth');
    expect(outages.active).toBe(false);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toEqual({ level: 'warn', fields: { outageMs: 2500, failures: 3, source: 'key sync' }, message: RECOVERED_MESSAGE });

    outages.failed(withCode('ECONNREFUSED'), 'GET /users/me');
    expect(lines).toHaveLength(3);
    expect(outages.failedIfUnavailable(withCode('23505'), 'POST /register')).toBe(false);
    expect(outages.failedIfUnavailable(withCode('ECONNREFUSED'), 'POST /register')).toBe(true);
    expect(lines).toHaveLength(3);
  });

  it('takes a failure long after the last one for a new outage, the one before having ended unseen', () => {
    const messages: string[] = [];
    const log = { error: (_fields: unknown, message: string) => messages.push(message), warn: () => undefined } as unknown as Parameters<typeof createOutageLog>[0];
    let now = 0;
    const outages = createOutageLog(log, { now: () => now });
    outages.failed(withCode('SQLITE_BUSY'), 'POST /register');
    now = OUTAGE_QUIET_MS - 1;
    outages.failed(withCode('SQLITE_BUSY'), 'POST /register');
    expect(messages).toHaveLength(1);
    now += OUTAGE_QUIET_MS;
    outages.failed(withCode('SQLITE_FULL'), 'POST /auth');
    expect(messages).toHaveLength(2);
  });
});

function expectUnavailable(response: LightMyRequestResponse | { status: number; headers: Headers; body: unknown }, what: string): void {
  const [status, retryAfter, body] =
    'statusCode' in response ? [response.statusCode, response.headers['retry-after'], response.json<Record<string, unknown>>()] : [response.status, response.headers.get('retry-after'), response.body];
  expect(status, what).toBe(503);
  expect(retryAfter, what).toBe(String(DATABASE_RETRY_AFTER_SECONDS));
  expect(body, what).toMatchObject({ statusCode: 503 });
  expect(['Service Unavailable', 'temporarily_unavailable'], what).toContain((body as { error?: unknown }).error);
  expect(JSON.stringify(body), what).not.toMatch(/SQLITE|ECONN|\bat .+:\d+:\d+/);
}

interface ParsedLine {
  level: number;
  msg: string;
}

const parse = (lines: readonly string[]) => lines.flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as ParsedLine] : []));
const outageLines = (lines: readonly string[]) => parse(lines).filter(({ msg }) => msg.startsWith(UNAVAILABLE_PREFIX) || msg === RECOVERED_MESSAGE || msg === 'request failed' || msg.startsWith('key maintenance failed'));

describe('an app whose SQLite database takes no writes', () => {
  it('answers 503 with Retry-After where it must write, keeps serving what only reads, logs the outage once, and recovers', async () => {
    const lines: string[] = [];
    const app = await readyApp({ databaseUrl: join(temporaryDirectory(), 'keys.db'), rateLimit: false, logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } } });
    const client = await registerClient(app, 'billing', { scopes: ['read'] });
    const { password } = (await app.inject({ method: 'POST', url: '/register', payload: { username: 'alice', email: 'alice@example.com' } })).json<{ password: string }>();
    const accessToken = (await app.inject({ method: 'POST', url: '/oauth/token', headers: { ...FORM, authorization: client.authorization }, payload: 'grant_type=client_credentials' })).json<{ access_token: string }>().access_token;
    // Every write refused while reads go on, as on a full disk or a file gone read-only (SQLITE_READONLY).
    await sql`PRAGMA query_only = ON`.execute(app.database);

    expectUnavailable(await app.inject({ method: 'POST', url: '/auth' }), 'POST /auth');
    expectUnavailable(await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic('alice', password) } }), 'POST /auth as alice');
    expectUnavailable(await app.inject({ method: 'POST', url: '/register', payload: { username: 'bob', email: 'bob@example.com' } }), 'POST /register');
    const revocation = await app.inject({ method: 'POST', url: '/oauth/revoke', headers: { ...FORM, authorization: client.authorization }, payload: `token=${accessToken}` });
    expectUnavailable(revocation, 'POST /oauth/revoke');
    expect(revocation.headers['cache-control']).toBe('no-store');
    expect(revocation.json()).toEqual({ statusCode: 503, error: 'temporarily_unavailable', error_description: 'The database is unavailable; try again later', message: 'The database is unavailable; try again later' });
    expect((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode).toBe(200);
    // A route that only reads still works, and does not end the outage.
    expect((await app.inject({ method: 'POST', url: '/oauth/token', headers: { ...FORM, authorization: client.authorization }, payload: 'grant_type=client_credentials' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic('alice', 'wrong') } })).statusCode).toBe(401);
    expect(outageLines(lines).map(({ level, msg }) => [level, msg])).toEqual([[50, expect.stringMatching(`^${UNAVAILABLE_PREFIX}`)]]);

    await sql`PRAGMA query_only = OFF`.execute(app.database);
    expect((await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic('alice', password) } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/register', payload: { username: 'bob', email: 'bob@example.com' } })).statusCode).toBe(201);
    expect(outageLines(lines).map(({ level, msg }) => [level, msg])).toEqual([
      [50, expect.stringMatching(`^${UNAVAILABLE_PREFIX}`)],
      [40, RECOVERED_MESSAGE],
    ]);
  });
});

describe('an app whose SQLite database is full', () => {
  it('answers 503, not 500, where the write is a transaction that SQLite rolled back by itself', async () => {
    const lines: string[] = [];
    const app = await readyApp({ databaseUrl: join(temporaryDirectory(), 'keys.db'), rateLimit: false, logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } } });
    const { password } = (await app.inject({ method: 'POST', url: '/register', payload: { username: 'alice', email: 'alice@example.com' } })).json<{ password: string }>();
    // SQLITE_FULL once the file would grow past max_page_count, as on a full disk; the pages there are fill up first.
    await sql`PRAGMA max_page_count = 1`.execute(app.database);
    let anonymous = await app.inject({ method: 'POST', url: '/auth' });
    for (let attempt = 0; attempt < 2000 && anonymous.statusCode === 200; attempt += 1) anonymous = await app.inject({ method: 'POST', url: '/auth' });
    expectUnavailable(anonymous, 'POST /auth');

    // A registered user's row and last_login go in one transaction, which SQLITE_FULL rolls back before our ROLLBACK comes.
    expectUnavailable(await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic('alice', password) } }), 'POST /auth as alice');
    expect(outageLines(lines).map(({ level, msg }) => [level, msg])).toEqual([[50, expect.stringMatching(`^${UNAVAILABLE_PREFIX}`)]]);

    await sql`PRAGMA max_page_count = 1073741823`.execute(app.database);
    expect((await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic('alice', password) } })).statusCode).toBe(200);
    expect(outageLines(lines)).toHaveLength(2);
    expect((await sql<{ integrity_check: string }>`PRAGMA integrity_check`.execute(app.database)).rows).toEqual([{ integrity_check: 'ok' }]);
  });
});

describe('an app whose PostgreSQL stops', () => {
  it('answers 503, logs one line for requests, connections, key sync, metrics and discovery alike, and the end without any request', async () => {
    const postgres = await startOwnPostgres();
    onTestFinished(() => postgres.stop());
    const lines: string[] = [];
    const app = await readyApp({ databaseUrl: postgres.url, rateLimit: false, keySyncIntervalMs: 100, logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } } });
    expect((await app.inject({ method: 'POST', url: '/auth' })).statusCode).toBe(200);

    const before = lines.length;
    postgres.pause();
    expectUnavailable(await app.inject({ method: 'POST', url: '/auth' }), 'POST /auth');
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode).toBe(200);
    // Several steps of the key sync fail meanwhile, and discovery's copy of the clients' scopes goes stale.
    await new Promise((resolve) => setTimeout(resolve, SCOPES_REFRESH_MS + 200));
    expect((await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).statusCode).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const quiet = parse(lines.slice(before)).filter(({ level }) => level >= 40);
    expect(quiet.map(({ msg }) => msg)).toEqual([expect.stringMatching(`^${UNAVAILABLE_PREFIX}`)]);

    postgres.resume();
    // No request is needed: the key sync's next step tells.
    await until('the recovery to be logged', () => Promise.resolve(outageLines(lines).length === 2));
    expect(parse(lines).filter(({ msg }) => msg === RECOVERED_MESSAGE)).toEqual([expect.objectContaining({ source: 'key sync' })]);
    expect((await app.inject({ method: 'POST', url: '/auth' })).statusCode).toBe(200);
  });
});

/** Fetches and reads the JSON body, for checks against a server process. */
async function call(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** While the database is out: every route that needs it says 503, the key documents are served. */
async function expectOutageAnswers(server: RunningServer, kid: string, bearer?: string): Promise<void> {
  expectUnavailable(await call(`${server.url}/auth`, { method: 'POST' }), 'POST /auth');
  if (bearer !== undefined) expectUnavailable(await call(`${server.url}/users/me`, { headers: { authorization: `Bearer ${bearer}` } }), 'GET /users/me');
  expectUnavailable(await call(`${server.url}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bob', email: 'bob@example.com' }) }), 'POST /register');
  expect((await call(`${server.url}/.well-known/jwks.json`)).status).toBe(200);
  expect((await call(`${server.url}/.well-known/${kid}.json`)).status).toBe(200);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Ends every connection the server has open to PostgreSQL, as an operator or a failover would. */
async function terminateServerConnections(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'jwks-server'");
  } finally {
    await client.end();
  }
}

async function firstKid(server: RunningServer): Promise<string> {
  const { body } = await call(`${server.url}/.well-known/jwks.json`);
  return String((body as { keys: { kid: string }[] }).keys[0]?.kid);
}

describe('the server process, its database out under it', () => {
  it('PostgreSQL stopped and started again: 503 with Retry-After meanwhile, one log line each way, back without a restart', async () => {
    const postgres = await startOwnPostgres();
    onTestFinished(() => postgres.stop());
    const server = await startServer({ DATABASE_URL: postgres.url, RATE_LIMIT_MAX: '0' });
    const kid = await firstKid(server);
    const registration = await call(`${server.url}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', email: 'alice@example.com' }) });
    const { password } = registration.body as { password: string };
    const auth = await call(`${server.url}/auth`, { method: 'POST', headers: { authorization: basic('alice', password) } });
    expect(auth.status).toBe(200);
    const { token } = auth.body as { token: string };

    postgres.pause();
    for (let round = 0; round < 5; round += 1) await expectOutageAnswers(server, kid, token);
    // Long enough for the key sync, once a second, to fail a few times too: still one line.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await expectOutageAnswers(server, kid, token);
    expect((await call(`${server.url}/readyz`)).status).toBe(503);

    postgres.resume();
    await until('POST /auth to succeed again', async () => (await call(`${server.url}/auth`, { method: 'POST' })).status === 200);
    await until('the recovery to be logged', () => Promise.resolve(outageLines(server.logLines).length === 2));
    expect(outageLines(server.logLines).map(({ level, msg }) => [level, msg])).toEqual([
      [50, expect.stringMatching(`^${UNAVAILABLE_PREFIX}`)],
      [40, RECOVERED_MESSAGE],
    ]);

    // Connections ended under the queries they run (a failover, pg_terminate_backend): answers, never a crash or a 500.
    const alice = basic('alice', password);
    for (let round = 0; round < 5; round += 1) {
      const inFlight = Array.from({ length: 40 }, () => call(`${server.url}/auth`, { method: 'POST', headers: { authorization: alice } }));
      await terminateServerConnections(postgres.url);
      const statuses = new Set((await Promise.all(inFlight)).map(({ status }) => status));
      expect([...statuses].filter((status) => status !== 200 && status !== 503)).toEqual([]);
    }
    await until('POST /auth to succeed after the connections were ended', async () => (await call(`${server.url}/auth`, { method: 'POST', headers: { authorization: alice } })).status === 200);
    expect(parse(server.logLines).filter(({ msg }) => msg === 'request failed')).toEqual([]);
    expect(await server.stop()).toBe(0);
  });

  it('SQLite locked by another process past the busy time-out: 503, and served again once the lock is gone', async () => {
    const databasePath = join(temporaryDirectory(), 'keys.db');
    const server = await startServer({ DATABASE_URL: databasePath, RATE_LIMIT_MAX: '0' });
    expect((await call(`${server.url}/auth`, { method: 'POST' })).status).toBe(200);

    const locker = new SQLite(databasePath);
    locker.exec('BEGIN IMMEDIATE');
    try {
      expectUnavailable(await call(`${server.url}/auth`, { method: 'POST' }), 'POST /auth while locked');
      // The first write waited out the busy time-out; once the outage is known, writes fail at once
      // rather than hold up the server, the key documents included, for another 5 s each.
      const started = Date.now();
      for (let attempt = 0; attempt < 3; attempt += 1) expectUnavailable(await call(`${server.url}/auth`, { method: 'POST' }), 'POST /auth while still locked');
      expect((await call(`${server.url}/.well-known/jwks.json`)).status).toBe(200);
      expect(Date.now() - started).toBeLessThan(SQLITE_BUSY_TIMEOUT_MS / 2);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    expect((await call(`${server.url}/auth`, { method: 'POST' })).status).toBe(200);
    await until('the recovery to be logged', () => Promise.resolve(outageLines(server.logLines).length === 2));
    expect(outageLines(server.logLines).map(({ level, msg }) => [level, msg])).toEqual([
      [50, expect.stringMatching(`^${UNAVAILABLE_PREFIX}`)],
      [40, RECOVERED_MESSAGE],
    ]);
    expect(await server.stop()).toBe(0);
  });

  // Mounting a tmpfs takes root (CI runs as root); elsewhere the full-disk case is the in-process test above.
  it.skipIf(process.getuid?.() !== 0)('SQLite on a tiny tmpfs filled up: 503 while full, the keys served, back once space is freed, the file intact', async () => {
    const mountPoint = join(temporaryDirectory(), 'tiny');
    mkdirSync(mountPoint);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint]);
    onTestFinished(() => {
      execFileSync('umount', ['-l', mountPoint]);
    });
    const databasePath = join(mountPoint, 'keys.db');
    const server = await startServer({ DATABASE_URL: databasePath, RATE_LIMIT_MAX: '0' });
    const kid = await firstKid(server);
    const registration = await call(`${server.url}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', email: 'alice@example.com' }) });
    const alice = basic('alice', (registration.body as { password: string }).password);
    expect((await call(`${server.url}/auth`, { method: 'POST', headers: { authorization: alice } })).status).toBe(200);

    const filler = join(mountPoint, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(4 * 1024 * 1024));
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    // Rows go into the pages the file and its write-ahead log have until none is left.
    await until('POST /auth to meet the full disk', async () => (await call(`${server.url}/auth`, { method: 'POST' })).status === 503, 30_000);
    for (let round = 0; round < 5; round += 1) await expectOutageAnswers(server, kid);
    expectUnavailable(await call(`${server.url}/auth`, { method: 'POST', headers: { authorization: alice } }), 'POST /auth as alice');

    rmSync(filler);
    expect((await call(`${server.url}/auth`, { method: 'POST', headers: { authorization: alice } })).status).toBe(200);
    await until('the recovery to be logged', () => Promise.resolve(outageLines(server.logLines).length === 2));
    expect(outageLines(server.logLines).map(({ level, msg }) => [level, msg])).toEqual([
      [50, expect.stringMatching(`^${UNAVAILABLE_PREFIX}`)],
      [40, RECOVERED_MESSAGE],
    ]);
    expect(await server.stop()).toBe(0);
    const copy = new SQLite(databasePath, { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    copy.close();
  });
});
