import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { newTestDatabase, readDatabase, serverEnvironment, temporaryDirectory, testDialect } from './helpers.js';
import { CLI_ENTRY, postAuth, postAuthOnNewConnection, startServer } from './server-process.js';

const SQLite = await loadSqliteDriver();
const onSqlite = testDialect === 'sqlite';

describe('the standalone server', () => {
  it('issues tokens that verify against its live JWKS, before and after a restart', async () => {
    const databasePath = await newTestDatabase();
    const server = await startServer({ DATABASE_URL: databasePath });

    const token = await postAuth(server.url);
    const expiredToken = await postAuth(server.url, '?expired=true');
    const liveJwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(token, liveJwks, { algorithms: ['RS256'] });
    expect(payload.sub).toBe('userABC');
    expect(protectedHeader.typ).toBe('JWT');
    // Refused because its kid is not published, not merely because it has expired.
    await expect(jwtVerify(expiredToken, liveJwks)).rejects.toThrow(errors.JWKSNoMatchingKey);

    const wrongMethod = await fetch(`${server.url}/auth`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');

    expect(await server.stop()).toBe(0);
    expect(server.logLines.some((line) => line.includes('shutting down'))).toBe(true);
    expect(server.logLines.join('\n')).not.toMatch(/PRIVATE KEY|MII[A-Za-z0-9+/]{20}/);

    const restarted = await startServer({ DATABASE_URL: databasePath });
    const jwksAfterRestart = createRemoteJWKSet(new URL(`${restarted.url}/.well-known/jwks.json`));
    await expect(jwtVerify(token, jwksAfterRestart, { algorithms: ['RS256'] })).resolves.toBeDefined();
    await expect(jwtVerify(expiredToken, jwksAfterRestart)).rejects.toThrow(errors.JWKSNoMatchingKey);
    expect(await restarted.stop()).toBe(0);
  });

  it.runIf(onSqlite)('keeps its keys where an outside reader of the SQLite file finds them', async () => {
    const directory = temporaryDirectory();
    // No DATABASE_URL: the default file name, in the working directory.
    const server = await startServer({}, { cwd: directory });
    const token = await postAuth(server.url);
    const expiredToken = await postAuth(server.url, '?expired=true');

    const databaseFile = join(directory, 'totally_not_my_privateKeys.db');
    expect(existsSync(databaseFile)).toBe(true);
    const reader = new SQLite(databaseFile, { readonly: true });
    const selectAll = reader.prepare('SELECT * FROM keys');
    const columns = selectAll.columns().map((column) => column.name);
    const rows = selectAll.raw().all() as [number, Buffer, number][];
    reader.close();

    const now = Date.now() / 1000;
    expect(columns).toEqual(['kid', 'key', 'exp']);
    expect(rows.every(([, key]) => key.toString().startsWith('-----BEGIN RSA PRIVATE KEY-----'))).toBe(true);
    const kidOf = (jwt: string) => Number(decodeProtectedHeader(jwt).kid);
    expect(rows.find(([kid]) => kid === kidOf(token))?.[2]).toBeGreaterThan(now);
    expect(rows.find(([kid]) => kid === kidOf(expiredToken))?.[2]).toBeLessThan(now);
    expect(await server.stop()).toBe(0);
  });

  it('lets servers starting together on a new database make each key of the line (active, successor, expired) once between them', async () => {
    const databasePath = await newTestDatabase();
    const servers = await Promise.all([startServer({ DATABASE_URL: databasePath }), startServer({ DATABASE_URL: databasePath })]);
    const [first, second] = await Promise.all(servers.map(async ({ url }) => (await fetch(`${url}/.well-known/jwks.json`)).json()));
    expect(first).toEqual(second);

    expect(await readDatabase(databasePath, (db) => db.selectFrom('keys').select('kid').execute())).toHaveLength(3);
    expect(await Promise.all(servers.map((server) => server.stop()))).toEqual([0, 0]);
  });
});

describe('the standalone server refusing an oversized body', () => {
  // Node's fetch, as a client in a process of its own sees it: without the rest of the body read
  // first, most 24 MiB uploads met a closed connection (EPIPE) instead of the 413.
  it('lets a client that is still sending the body read its 413, with a Content-Length or without one', async () => {
    const server = await startServer({ DATABASE_URL: await newTestDatabase() });
    const routes = [
      ['/auth', 'application/json'],
      ['/register', 'application/json'],
      ['/oauth/token', 'application/x-www-form-urlencoded'],
    ] as const;
    const body = Buffer.alloc(24 * 1024 * 1024, 'x');
    for (const [path, contentType] of routes) {
      // Sent whole (Content-Length: refused before a byte is read) and as a stream (chunked: refused once over the limit).
      for (const payload of [body, body, new Blob([body]).stream()]) {
        const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body: payload, duplex: 'half' });
        expect(response.status, path).toBe(413);
        expect(((await response.json()) as { statusCode: number }).statusCode).toBe(413);
      }
    }
    expect((await fetch(`${server.url}/auth`, { method: 'POST' })).status).toBe(200);
    await server.stop();
  });
});

describe('the standalone server shutting down', () => {
  it('finishes every request in flight at SIGTERM, then closes the database', async () => {
    const databaseUrl = await newTestDatabase();
    // At debug level the server logs each request as it arrives, not only when answered.
    const server = await startServer({ DATABASE_URL: databaseUrl, RATE_LIMIT_MAX: '0', LOG_LEVEL: 'debug' });
    const received = () => server.logLines.filter((line) => line.includes('"incoming request"')).length;
    const inFlight = Array.from({ length: 40 }, () =>
      postAuthOnNewConnection(server.url).then(
        (token) => ({ token }),
        (error: unknown) => ({ error: String(error) }),
      ),
    );
    for (let attempt = 0; received() < 40 && attempt < 200; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(received()).toBe(40);
    const stopped = server.stop();

    const outcomes = await Promise.all(inFlight);
    expect(outcomes.filter((outcome) => 'error' in outcome)).toEqual([]);
    expect(await stopped).toBe(0);
    expect(server.logLines.some((line) => line.includes('"msg":"shutting down"'))).toBe(true);
    if (testDialect === 'sqlite') {
      // The last connection to close checkpoints the write-ahead log and deletes it.
      expect(existsSync(`${databaseUrl}-wal`)).toBe(false);
    } else {
      const { rows } = await readDatabase(
        databaseUrl,
        (db) => sql<{ count: number }>`SELECT count(*) AS count FROM pg_stat_activity WHERE application_name = 'jwks-server' AND datname = current_database() AND pid <> pg_backend_pid()`.execute(db),
      );
      expect(rows[0]?.count).toBe(0);
    }
    // Every request the server received was answered and logged.
    expect(await readDatabase(databaseUrl, (db) => db.selectFrom('auth_logs').select('id').execute())).toHaveLength(40);
  });
});

describe('the standalone server and the admin CLI on one database', () => {
  function runCli(args: string[], variables: Record<string, string>): { status: number | null; stdout: string } {
    const { status, stdout } = spawnSync(process.execPath, [CLI_ENTRY, ...args], { env: serverEnvironment(variables), encoding: 'utf8' });
    return { status, stdout };
  }

  async function publishedKids(url: string): Promise<string[]> {
    const { keys } = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    return keys.map((jwk) => jwk.kid);
  }

  async function waitFor(condition: () => Promise<boolean>): Promise<void> {
    for (let attempt = 0; attempt < 60; attempt += 1) {
      if (await condition()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the running server did not pick the change up within 6 s');
  }

  it('serves a key revoked or rotated by the CLI within seconds, and signs with every configured algorithm', async () => {
    const variables = { DATABASE_URL: await newTestDatabase(), ALGORITHMS: 'RS256,ES256,EdDSA', ISSUER: 'https://id.example.com' };
    const server = await startServer(variables);
    const liveJwks = () => createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));

    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ issuer: 'https://id.example.com', id_token_signing_alg_values_supported: ['RS256', 'ES256', 'EdDSA'] });
    for (const alg of ['RS256', 'ES256', 'EdDSA']) {
      const { protectedHeader } = await jwtVerify(await postAuth(server.url, `?alg=${alg}`), liveJwks(), { issuer: 'https://id.example.com' });
      expect(protectedHeader.alg).toBe(alg);
    }

    const activeKid = decodeProtectedHeader(await postAuth(server.url)).kid ?? '';
    expect(runCli(['keys', 'revoke', activeKid], variables)).toEqual({ status: 0, stdout: `revoked key ${activeKid}\n` });
    await waitFor(async () => !(await publishedKids(server.url)).includes(activeKid));
    const afterRevocation = await postAuth(server.url);
    expect(decodeProtectedHeader(afterRevocation).kid).not.toBe(activeKid);
    await expect(jwtVerify(afterRevocation, liveJwks())).resolves.toBeDefined();

    const rotation = runCli(['keys', 'rotate', '--alg', 'ES256'], variables);
    expect(rotation.status).toBe(0);
    const rotatedKid = /published key (\d+)/.exec(rotation.stdout)?.[1] ?? 'none';
    await waitFor(async () => (await publishedKids(server.url)).includes(rotatedKid));

    const listed = JSON.parse(runCli(['keys', 'list', '--json'], variables).stdout) as { kid: number; state: string }[];
    expect(listed.find((key) => String(key.kid) === activeKid)?.state).toBe('revoked');
    expect(listed.find((key) => String(key.kid) === rotatedKid)?.state).toBe('published');
    expect(await server.stop()).toBe(0);
  });
});

describe('the standalone server with users', () => {
  it.runIf(onSqlite)('registers a user, authenticates them, serves their profile and logs the auth in the SQLite file', async () => {
    const databasePath = join(temporaryDirectory(), 'users.db');
    const server = await startServer({ DATABASE_URL: databasePath, NOT_MY_KEY: 'an operator secret', AUTH_MODE: 'strict' });
    const post = (path: string, body: unknown) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

    const registration = await post('/register', { username: 'testor_e2e00001', email: 'testor_e2e00001@test.com' });
    expect(registration.status).toBe(201);
    const { password } = (await registration.json()) as { password: string };
    expect((await post('/auth', { username: 'testor_e2e00001', password: 'wrong' })).status).toBe(401);
    const auth = await post('/auth', { username: 'testor_e2e00001', password });
    expect(auth.status).toBe(200);
    const { token } = (await auth.json()) as { token: string };

    const profile = await fetch(`${server.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(profile.status).toBe(200);
    expect(await profile.json()).toMatchObject({ username: 'testor_e2e00001', email: 'testor_e2e00001@test.com' });

    const reader = new SQLite(databasePath, { readonly: true });
    const user = reader.prepare('SELECT * FROM users WHERE username = ?').get('testor_e2e00001') as { id: number; password_hash: string };
    const logs = reader.prepare('SELECT * FROM auth_logs').all();
    const keys = reader.prepare('SELECT key FROM keys').pluck().all() as Buffer[];
    reader.close();
    expect(user.password_hash).toMatch(/^\$argon2id\$/);
    expect(logs).toEqual([{ id: 1, request_ip: '127.0.0.1', request_timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/) as unknown, user_id: user.id }]);
    expect(keys.every((key) => !key.toString('latin1').startsWith('-----BEGIN'))).toBe(true);
    expect(server.logLines.join('\n')).not.toContain(password);
    expect(await server.stop()).toBe(0);
  });
});
