/**
 * `jwks-server db backup`: a consistent copy of a running server's SQLite database, taken under
 * token and registration load, that a server started on it serves and verifies from.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { describe, expect, it } from 'vitest';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { runCli } from './cli-helpers.js';
import { readDatabase, temporaryDirectory } from './helpers.js';
import { startServer } from './server-process.js';

const SQLite = await loadSqliteDriver();

async function countAuthLogs(databasePath: string): Promise<number> {
  return readDatabase(databasePath, async (db) => (await db.selectFrom('auth_logs').select((eb) => eb.fn.countAll<number>().as('rows')).executeTakeFirstOrThrow()).rows);
}

/** Tokens and registrations, a few at a time, until `stop` is called; resolves with every status answered. */
function keepBusy(baseUrl: string): { stop(): Promise<number[]> } {
  let running = true;
  let registrations = 0;
  const statuses: number[] = [];
  const client = async () => {
    while (running) {
      const registration = registrations % 4 === 0;
      registrations += 1;
      const response = registration
        ? await fetch(`${baseUrl}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: `backup_${String(registrations)}`, email: `backup_${String(registrations)}@example.com` }) })
        : await fetch(`${baseUrl}/auth`, { method: 'POST' });
      await response.arrayBuffer();
      statuses.push(response.status);
    }
  };
  const clients = Promise.all([client(), client(), client(), client()]);
  return {
    stop: async () => {
      running = false;
      await clients;
      return statuses;
    },
  };
}

describe('jwks-server db backup', () => {
  it('copies a running server\'s database under load into a file that is intact, serves the same JWKS and verifies the tokens issued before', async () => {
    const directory = temporaryDirectory();
    const databasePath = join(directory, 'keys.db');
    const copyPath = join(directory, 'backup.db');
    const server = await startServer({ DATABASE_URL: databasePath, RATE_LIMIT_MAX: '0' });
    const { token } = (await (await fetch(`${server.url}/auth`, { method: 'POST' })).json()) as { token: string };
    const jwksResponse = await fetch(`${server.url}/.well-known/jwks.json`);
    const jwks = (await jwksResponse.json()) as JSONWebKeySet;

    const load = keepBusy(server.url);
    // Some load before the copy, so that it is taken while writes are going on.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const rowsBefore = await countAuthLogs(databasePath);
    const backup = await runCli(['db', 'backup', copyPath], { DATABASE_URL: databasePath });
    const statuses = await load.stop();
    await server.stop();

    expect(backup).toMatchObject({ code: 0, stderr: '' });
    expect(backup.stdout).toMatch(/^.*backup\.db: \d+ pages, integrity ok$/);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((status) => status !== 200 && status !== 201)).toEqual([]);
    const copy = new SQLite(copyPath, { readonly: true, fileMustExist: true });
    try {
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      copy.close();
    }
    // Every row committed before the copy began is in it.
    expect(await countAuthLogs(copyPath)).toBeGreaterThanOrEqual(rowsBefore);

    const restored = await startServer({ DATABASE_URL: copyPath });
    const restoredResponse = await fetch(`${restored.url}/.well-known/jwks.json`);
    expect(restoredResponse.headers.get('etag')).toBe(jwksResponse.headers.get('etag'));
    expect(await restoredResponse.json()).toEqual(jwks);
    const { payload } = await jwtVerify(token, createLocalJWKSet((await (await fetch(`${restored.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet));
    expect(payload.sub).toBe('demo-user');
    await restored.stop();
  });

  it('never writes over an existing file', async () => {
    const directory = temporaryDirectory();
    const databasePath = join(directory, 'keys.db');
    await readDatabase(databasePath, () => Promise.resolve());
    const existing = join(directory, 'important.db');
    writeFileSync(existing, 'not a database');

    const result = await runCli(['db', 'backup', existing], { DATABASE_URL: databasePath });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('exists already');
    expect(readFileSync(existing, 'utf8')).toBe('not a database');
  });

  it.each([
    ['a PostgreSQL database', { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/jwks' }, /pg_dump/],
    ['an in-memory database', { DATABASE_URL: ':memory:' }, /nothing to back up/],
  ])('tells to back up %s otherwise, with exit code 2, touching nothing', async (_name, env, message) => {
    const copyPath = join(temporaryDirectory(), 'backup.db');
    const result = await runCli(['db', 'backup', copyPath], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(existsSync(copyPath)).toBe(false);
  });

  it('takes exactly one file', async () => {
    const databasePath = join(temporaryDirectory(), 'keys.db');
    expect((await runCli(['db', 'backup'], { DATABASE_URL: databasePath })).code).toBe(2);
    expect((await runCli(['db', 'backup', 'a.db', 'b.db'], { DATABASE_URL: databasePath })).code).toBe(2);
    expect(existsSync(databasePath)).toBe(false);
  });
});
