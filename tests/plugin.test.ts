import { readdirSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import formbody from '@fastify/formbody';
import sensible from '@fastify/sensible';
import Fastify, { type FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { buildApp, jwksService, keyState, type JwksServiceOptions } from '../src/index.js';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { insertCourseKey, newTestDatabase, openTestDatabase, readyApp, temporaryDirectory, testDialect } from './helpers.js';

async function hostApp(options?: JwksServiceOptions): Promise<FastifyInstance> {
  const serviceOptions = options ?? { databaseUrl: testDialect === 'sqlite' ? ':memory:' : await newTestDatabase() };
  const host = Fastify();
  onTestFinished(async () => {
    await host.close();
  });
  await host.register(sensible);
  await host.register(formbody);
  host.setNotFoundHandler((_request, reply) => reply.code(404).send({ hostNotFound: true }));
  host.get('/host-route', () => {
    throw new Error('the host keeps its own error handling');
  });
  await host.register(jwksService, serviceOptions);
  await host.ready();
  return host;
}

describe('jwksService mounted in another Fastify app', () => {
  it('serves its routes beside the host, which already had sensible and formbody', async () => {
    const host = await hostApp();
    const token = (await host.inject({ method: 'POST', url: '/auth', payload: 'username=hosted', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).json<{ token: string }>().token;
    const jwks = (await host.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks));
    expect(payload.sub).toBe('hosted');
  });

  it('gives the host typed decorators for the key store, keyring and signer', async () => {
    const host = await hostApp();
    const token = await host.signer.issueToken({ subject: 'from-host-code' });
    const { jwks } = await host.keyring.current();
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks));
    expect(payload.sub).toBe('from-host-code');
    const now = Math.floor(Date.now() / 1000);
    const published = (await host.keyStore.listKeys()).filter((key) => !['expired', 'revoked'].includes(keyState(key, now)));
    expect(published.map((key) => String(key.kid))).toEqual(jwks.keys.map((jwk) => jwk.kid));
  });

  it("leaves the host's not-found and error handling as they were", async () => {
    const host = await hostApp();
    expect((await host.inject({ method: 'GET', url: '/nowhere' })).json()).toEqual({ hostNotFound: true });
    const failure = await host.inject({ method: 'GET', url: '/host-route' });
    expect(failure.statusCode).toBe(500);
    expect(failure.json<{ message: string }>().message).toBe('the host keeps its own error handling');
  });

  it('closes its database when the host closes', async () => {
    const host = await hostApp();
    const { database } = host;
    await host.close();
    await expect(database.selectFrom('keys').selectAll().execute()).rejects.toThrow();
  });
});

describe('keys persist in the database file', () => {
  it('serves the same keys after a restart, so earlier tokens still verify', async () => {
    const databasePath = await newTestDatabase();
    const first = buildApp({ databaseUrl: databasePath });
    await first.ready();
    const token = (await first.inject({ method: 'POST', url: '/auth' })).json<{ token: string }>().token;
    const jwksBefore = (await first.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
    await first.close();

    const second = await readyApp({ databaseUrl: databasePath });
    const jwksAfter = (await second.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
    expect(jwksAfter).toEqual(jwksBefore);
    await expect(jwtVerify(token, createLocalJWKSet(jwksAfter))).resolves.toBeDefined();
  });

  it.runIf(testDialect === 'postgres')('refuses to start on a PostgreSQL server it cannot reach, naming it without the password', async () => {
    const app = buildApp({ databaseUrl: 'postgres://jwks:s3cret@127.0.0.1:1/jwks' });
    const error = await app.ready().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toMatchObject({ name: 'DatabaseOpenError', message: 'cannot connect to the PostgreSQL database postgres://jwks:***@127.0.0.1:1/jwks' });
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain('s3cret');
    await app.close();
  });

  it.runIf(testDialect === 'sqlite')('refuses to start on a database it cannot open, and creates nothing', async () => {
    const directory = temporaryDirectory();
    const databasePath = join(directory, 'missing-directory', 'keys.db');
    const app = buildApp({ databaseUrl: databasePath });
    await expect(app.ready()).rejects.toMatchObject({
      name: 'DatabaseOpenError',
      message: `cannot open ${databasePath} as a SQLite database`,
      cause: { message: expect.stringMatching(/directory does not exist/) as unknown },
    });
    expect(readdirSync(directory)).toEqual([]);
  });
});

describe('the key scheduler', () => {
  function collectLogs(): { stream: Writable; lines: () => string[] } {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(...chunk.toString().split('\n').filter((line) => line !== ''));
        callback();
      },
    });
    return { stream, lines: () => lines };
  }

  async function waitForLog(lines: () => string[], pattern: RegExp): Promise<string> {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      const line = lines().find((candidate) => pattern.test(candidate));
      if (line !== undefined) return line;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no log line matched ${String(pattern)}`);
  }

  it('prunes on its own timer and logs the kids, never key material', async () => {
    const databasePath = await newTestDatabase();
    const db = await openTestDatabase(databasePath);
    const pem = await generatePrivateKeyPem('RS256');
    const now = Math.floor(Date.now() / 1000);
    await insertCourseKey(db, pem, now - 20_000);
    await insertCourseKey(db, pem, now - 10_000);
    const logs = collectLogs();
    await readyApp({ databaseUrl: databasePath, expiredKeyRetentionSeconds: 0, keySyncIntervalMs: 20, logger: { level: 'info', stream: logs.stream } });

    expect(JSON.parse(await waitForLog(logs.lines, /"pruned keys"/))).toMatchObject({ kids: [1] });
    expect(logs.lines().join('\n')).not.toMatch(/PRIVATE KEY|MII[A-Za-z0-9+/]{20}/);
  });

  it('logs a failed step and keeps going', async () => {
    const logs = collectLogs();
    const app = await readyApp({ keySyncIntervalMs: 20, logger: { level: 'info', stream: logs.stream } });
    await app.database.destroy();
    const failure = JSON.parse(await waitForLog(logs.lines, /key maintenance failed/)) as { level: number };
    expect(failure.level).toBe(50);
  });
});
