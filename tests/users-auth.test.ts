import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { DEMO_SUBJECT } from '../src/users/authenticator.js';
import { basic, expectJsonError, readyApp } from './helpers.js';
import { expectRecentTimestamp, register, tokenFor, userRows } from './users-helpers.js';

function authLogRows(app: FastifyInstance) {
  return app.database.selectFrom('auth_logs').selectAll().orderBy('id').execute();
}

describe('POST /auth in demo mode', () => {
  it.each([
    ['JSON', (password: string) => ({ payload: { username: 'testor_1a2b3c4d', password } })],
    ['a form', (password: string) => ({ payload: `username=testor_1a2b3c4d&password=${password}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } })],
    ['HTTP Basic', (password: string) => ({ headers: { authorization: basic('testor_1a2b3c4d', password) } })],
  ])('verifies a registered user from %s, logs the auth and sets last_login', async (_name, credentials) => {
    const app = await readyApp();
    const password = await register(app);
    const claims = decodeJwt(await tokenFor(app, credentials(password)));

    expect(claims).toMatchObject({ sub: 'testor_1a2b3c4d', amr: ['pwd'] });
    const [user] = await userRows(app);
    expectRecentTimestamp(user?.last_login);
    const [log] = await authLogRows(app);
    expect(log).toMatchObject({ id: 1, request_ip: '127.0.0.1', user_id: user?.id });
    expectRecentTimestamp(log?.request_timestamp);
  });

  it('refuses a registered user with the wrong password or none, and logs nothing', async () => {
    const app = await readyApp();
    await register(app);
    for (const payload of [{ username: 'testor_1a2b3c4d', password: 'wrong' }, { username: 'testor_1a2b3c4d' }]) {
      const response = await app.inject({ method: 'POST', url: '/auth', payload });
      expect(expectJsonError(response, 401)).toBe('Invalid username or password');
      expect(response.headers['www-authenticate']).toBe('Basic realm="jwks-server", charset="UTF-8"');
    }
    expect(await authLogRows(app)).toEqual([]);
    expect((await userRows(app))[0]?.last_login).toBeNull();
  });

  it('checks the password of a registered user named in another case, and issues the token in the registered name', async () => {
    const app = await readyApp();
    const password = await register(app);
    expectJsonError(await app.inject({ method: 'POST', url: '/auth', payload: { username: 'TESTOR_1A2B3C4D', password: 'wrong' } }), 401);
    expect(decodeJwt(await tokenFor(app, { payload: { username: 'TESTOR_1A2B3C4D', password } })).sub).toBe('testor_1a2b3c4d');
  });

  it.each([
    ['a numeric password', { username: 'testor_1a2b3c4d', password: 12345 }],
    ['a username in an array', { username: ['testor_1a2b3c4d'], password: 'x' }],
  ])('refuses %s with 400 rather than coercing it', async (_name, payload) => {
    const app = await readyApp();
    expect(expectJsonError(await app.inject({ method: 'POST', url: '/auth', payload }), 400)).toMatch(/^body\/(username|password) must be string$/);
  });

  it('still issues tokens to unknown users and to requests without credentials, logged without a user', async () => {
    const app = await readyApp();
    expect(decodeJwt(await tokenFor(app, { payload: { username: 'nobody', password: 'x' } }))).not.toHaveProperty('amr');
    expect(decodeJwt(await tokenFor(app, {})).sub).toBe(DEMO_SUBJECT);
    expect((await authLogRows(app)).map((log) => log.user_id)).toEqual([null, null]);
  });

  it('logs the socket address, not X-Forwarded-For, unless proxies are trusted', async () => {
    const direct = await readyApp();
    await tokenFor(direct, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect((await authLogRows(direct))[0]?.request_ip).toBe('127.0.0.1');

    const proxied = await readyApp({ trustProxy: '127.0.0.1' });
    await tokenFor(proxied, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect((await authLogRows(proxied))[0]?.request_ip).toBe('203.0.113.9');
  });
});

describe('POST /auth in strict mode', () => {
  it('issues a token only to a registered user with the right password', async () => {
    const app = await readyApp({ authMode: 'strict' });
    const password = await register(app);
    const refused = [
      { payload: {} },
      { payload: { username: 'nobody', password } },
      { payload: { username: 'testor_1a2b3c4d', password: 'wrong' } },
    ];
    for (const request of refused) {
      const response = await app.inject({ method: 'POST', url: '/auth', ...request });
      expectJsonError(response, 401);
      expect(response.headers['www-authenticate']).toMatch(/^Basic realm=/);
    }
    expect(decodeJwt(await tokenFor(app, { payload: { username: 'testor_1a2b3c4d', password } })).sub).toBe('testor_1a2b3c4d');
    expect((await authLogRows(app)).map((log) => log.user_id)).toEqual([1]);
  });
});
