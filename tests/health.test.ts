import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { expectJsonError, readyApp, testDialect } from './helpers.js';

describe('GET /healthz', () => {
  it('answers 200 while the process runs, uncached, and 405 to other methods', async () => {
    const app = await readyApp();
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
    expect(response.headers['cache-control']).toBe('no-store');
    expect((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode).toBe(200);
    const post = await app.inject({ method: 'POST', url: '/healthz' });
    expectJsonError(post, 405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });
});

describe('GET /readyz', () => {
  it('answers 200 with the algorithms it can sign with', async () => {
    const app = await readyApp({ algorithms: ['RS256', 'ES256'] });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ready', algorithms: ['RS256', 'ES256'] });
    expect(response.headers['cache-control']).toBe('no-store');
    expectJsonError(await app.inject({ method: 'DELETE', url: '/readyz' }), 405);
  });

  it('answers 503 in the JSON error shape when the database does not answer, while /healthz still answers 200', async () => {
    const app = await readyApp();
    await app.database.destroy();
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(expectJsonError(response, 503)).toBe('not ready: the database does not answer');
    expect(response.headers['retry-after']).toBe('5');
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('is never rate limited, unlike the routes that sign', async () => {
    const app = await readyApp({ rateLimit: { max: 1, windowMs: 60_000 } });
    for (let request = 0; request < 20; request += 1) {
      expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    }
  });
});

describe('GET /readyz without a key to sign with', () => {
  it('answers 503 when every key is revoked and no new one can be stored', async () => {
    const app = await readyApp();
    const db = app.database;
    if (testDialect === 'sqlite') {
      await sql`CREATE TRIGGER refuse_new_keys BEFORE INSERT ON key_lifecycle BEGIN SELECT RAISE(ABORT, 'keys are frozen'); END`.execute(db);
    } else {
      await sql`CREATE FUNCTION refuse_key() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'keys are frozen'; END $$`.execute(db);
      await sql`CREATE TRIGGER refuse_new_keys BEFORE INSERT ON key_lifecycle FOR EACH ROW EXECUTE FUNCTION refuse_key()`.execute(db);
    }
    const now = Math.floor(Date.now() / 1000);
    for (const { kid } of await app.keyStore.listKeys()) await app.keyStore.revoke(kid, now);
    await app.keyring.reload();

    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(expectJsonError(response, 503)).toBe('not ready: the keys to sign with can be neither loaded nor made');
    // Waiting does not mend this one.
    expect(response.headers['retry-after']).toBeUndefined();
  });
});
