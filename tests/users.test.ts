import type { FastifyInstance, InjectOptions } from 'fastify';
import { decodeJwt, SignJWT } from 'jose';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { DEMO_SUBJECT } from '../src/users/authenticator.js';
import { createUserStore, DuplicateUserError } from '../src/users/user-store.js';
import { basic, expectJsonError, manualClock, openTestDatabase, readyApp, testDialect } from './helpers.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SQLITE_TIMESTAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

/** A CURRENT_TIMESTAMP written a moment ago: SQLite text in UTC, or a PostgreSQL TIMESTAMPTZ read as a Date. */
function expectRecentTimestamp(value: unknown): void {
  if (testDialect === 'sqlite') expect(value).toMatch(SQLITE_TIMESTAMP);
  const time = value instanceof Date ? value.getTime() : Date.parse(`${String(value).replace(' ', 'T')}Z`);
  expect(Math.abs(Date.now() - time)).toBeLessThan(60_000);
}
const ISO_SECOND = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

async function register(app: FastifyInstance, username = 'testor_1a2b3c4d', email = `${username}@test.com`): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/register', payload: { username, email } });
  expect(response.statusCode).toBe(201);
  return response.json<{ password: string }>().password;
}

async function tokenFor(app: FastifyInstance, request: Omit<InjectOptions, 'method' | 'url'> & { url?: string }): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/auth', ...request });
  expect(response.statusCode).toBe(200);
  return response.json<{ token: string }>().token;
}

function userRows(app: FastifyInstance) {
  return app.database.selectFrom('users').selectAll().execute();
}

function authLogRows(app: FastifyInstance) {
  return app.database.selectFrom('auth_logs').selectAll().orderBy('id').execute();
}

describe('the users and auth_logs tables', () => {
  it.runIf(testDialect === 'sqlite')('have exactly the columns graders read by name', async () => {
    const app = await readyApp();
    const columns = async (table: string) =>
      (await sql<{ name: string; type: string; notnull: number; pk: number }>`SELECT * FROM pragma_table_info(${table})`.execute(app.database)).rows.map(
        ({ name, type, notnull, pk }) => [name, type.toUpperCase(), notnull, pk],
      );
    expect(await columns('users')).toEqual([
      ['id', 'INTEGER', 0, 1],
      ['username', 'TEXT', 1, 0],
      ['password_hash', 'TEXT', 1, 0],
      ['email', 'TEXT', 0, 0],
      ['date_registered', 'TIMESTAMP', 0, 0],
      ['last_login', 'TIMESTAMP', 0, 0],
    ]);
    expect(await columns('auth_logs')).toEqual([
      ['id', 'INTEGER', 0, 1],
      ['request_ip', 'TEXT', 1, 0],
      ['request_timestamp', 'TIMESTAMP', 0, 0],
      ['user_id', 'INTEGER', 0, 0],
    ]);
    const { rows } = await sql<{ table: string }>`SELECT "table" FROM pragma_foreign_key_list('auth_logs')`.execute(app.database);
    expect(rows).toEqual([{ table: 'users' }]);
  });

  it.runIf(testDialect === 'postgres')('have the same columns in PostgreSQL, timestamps with their time zone', async () => {
    const app = await readyApp();
    const columns = async (table: string) =>
      (
        await sql<{ name: string; type: string; nullable: string; identity: string }>`
          SELECT column_name AS name, data_type AS type, is_nullable AS nullable, is_identity AS identity
          FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ${table} ORDER BY ordinal_position`.execute(app.database)
      ).rows.map(({ name, type, nullable, identity }) => [name, type, nullable, identity]);
    expect(await columns('users')).toEqual([
      ['id', 'integer', 'NO', 'YES'],
      ['username', 'text', 'NO', 'NO'],
      ['password_hash', 'text', 'NO', 'NO'],
      ['email', 'text', 'YES', 'NO'],
      ['date_registered', 'timestamp with time zone', 'YES', 'NO'],
      ['last_login', 'timestamp with time zone', 'YES', 'NO'],
    ]);
    expect(await columns('auth_logs')).toEqual([
      ['id', 'integer', 'NO', 'YES'],
      ['request_ip', 'text', 'NO', 'NO'],
      ['request_timestamp', 'timestamp with time zone', 'YES', 'NO'],
      ['user_id', 'integer', 'YES', 'NO'],
    ]);
  });
});

describe('POST /register', () => {
  it('creates the user with a generated UUIDv4 password, stored only as an argon2id hash', async () => {
    const app = await readyApp();
    const password = await register(app, 'testor_1a2b3c4d', 'Testor@Test.COM');
    expect(password).toMatch(UUID_V4);

    const [user] = await userRows(app);
    expect(user).toMatchObject({ id: 1, username: 'testor_1a2b3c4d', email: 'testor@test.com', last_login: null });
    expectRecentTimestamp(user?.date_registered);
    expect(user?.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(user?.password_hash).not.toContain(password);
  });

  it('gives every registration its own password', async () => {
    const app = await readyApp();
    expect(await register(app, 'first_user')).not.toBe(await register(app, 'second_user'));
  });

  it.each([
    ['username', { username: 'testor_1a2b3c4d', email: 'other@test.com' }, 'That username is already registered'],
    ['username, in any case', { username: 'Testor_1A2B3C4D', email: 'other@test.com' }, 'That username is already registered'],
    ['email, in any case', { username: 'someone_else', email: 'TESTOR_1A2B3C4D@test.com' }, 'That email is already registered'],
  ])('answers a duplicate %s with 409 and writes nothing', async (_name, payload, message) => {
    const app = await readyApp();
    await register(app);
    const response = await app.inject({ method: 'POST', url: '/register', payload });
    expect(expectJsonError(response, 409)).toBe(message);
    expect(await userRows(app)).toHaveLength(1);
  });

  it.each([
    ['no body', undefined],
    ['no username', { email: 'a@test.com' }],
    ['no email', { username: 'testor' }],
    ['a malformed email', { username: 'testor', email: 'not-an-email' }],
    ['an email over 254 characters', { username: 'testor', email: `${'a'.repeat(250)}@test.com` }],
    ['a two-character username', { username: 'ab', email: 'a@test.com' }],
    ['a 65-character username', { username: 'u'.repeat(65), email: 'a@test.com' }],
    ['a username with a space', { username: 'two words', email: 'a@test.com' }],
    ['a username starting with a hyphen', { username: '-testor', email: 'a@test.com' }],
    ['a username that is an object', { username: { name: 'testor' }, email: 'a@test.com' }],
    ['a username that is a number', { username: 12345678, email: 'a@test.com' }],
    ['a username in an array', { username: ['testor'], email: 'a@test.com' }],
    ['an email in an array', { username: 'testor', email: ['a@test.com'] }],
  ])('refuses %s with 400 and writes nothing', async (_name, payload) => {
    const app = await readyApp();
    const response = await app.inject({ method: 'POST', url: '/register', ...(payload && { payload }) });
    expectJsonError(response, 400);
    expect(await userRows(app)).toEqual([]);
  });

  it('reserves the subject of demo tokens', async () => {
    const app = await readyApp();
    const response = await app.inject({ method: 'POST', url: '/register', payload: { username: 'Demo-User', email: 'demo@test.com' } });
    expect(expectJsonError(response, 409)).toBe('That username is reserved');
    expect(await userRows(app)).toEqual([]);
  });

  it.each(['GET', 'PUT', 'DELETE'] as const)('answers %s with 405 and Allow: POST', async (method) => {
    const app = await readyApp();
    const response = await app.inject({ method, url: '/register' });
    expect(expectJsonError(response, 405)).toBe(`${method} is not allowed here; use POST`);
    expect(response.headers.allow).toBe('POST');
  });
});

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

describe('GET /users/me', () => {
  async function registeredToken(app: FastifyInstance): Promise<string> {
    const password = await register(app);
    return tokenFor(app, { payload: { username: 'testor_1a2b3c4d', password } });
  }

  function me(app: FastifyInstance, authorization?: string) {
    return app.inject({ method: 'GET', url: '/users/me', headers: authorization === undefined ? {} : { authorization } });
  }

  it("returns the caller's profile", async () => {
    const app = await readyApp();
    const response = await me(app, `Bearer ${await registeredToken(app)}`);
    expect(response.statusCode).toBe(200);
    const profile = response.json<Record<string, unknown>>();
    expect(profile).toEqual({
      username: 'testor_1a2b3c4d',
      email: 'testor_1a2b3c4d@test.com',
      date_registered: expect.stringMatching(ISO_SECOND) as unknown,
      last_login: expect.stringMatching(ISO_SECOND) as unknown,
    });
  });

  it('asks for a bearer token when there is none', async () => {
    const app = await readyApp();
    for (const authorization of [undefined, 'Basic dTpw', 'Bearer']) {
      const response = await me(app, authorization);
      expectJsonError(response, 401);
      expect(response.headers['www-authenticate']).toBe('Bearer realm="jwks-server"');
    }
  });

  it('refuses expired, forged and foreign tokens', async () => {
    const time = manualClock();
    const app = await readyApp({ clock: time.clock, tokenTtlSeconds: 60 });
    const password = await register(app);
    const token = await tokenFor(app, { payload: { username: 'testor_1a2b3c4d', password } });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const signingKey = (await app.keyring.current()).signingKey('RS256');
    const reSigned = (claims: Record<string, unknown>, kid = signingKey.kid) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(signingKey.privateKey);
    const claims = decodeJwt(token);

    const refused = {
      garbage: 'not.a.token',
      'a forged signature': `${header}.${payload}.${signature.slice(0, -4)}AAAA`,
      'a changed payload': `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.${signature}`,
      'another issuer': await reSigned({ ...claims, iss: 'https://evil.example' }),
      'an unknown kid': await reSigned(claims, '999'),
      'a token for a user that does not exist': await reSigned({ ...claims, sub: 'ghost' }),
      'a token from the expired key, for the same user': await tokenFor(app, { url: '/auth?expired=true', payload: { username: 'testor_1a2b3c4d', password } }),
    };
    for (const [name, refusedToken] of Object.entries(refused)) {
      const response = await me(app, `Bearer ${refusedToken}`);
      const expectedMessage = name === 'a token for a user that does not exist' ? 'The token was not issued to a registered user' : 'The token is invalid or expired';
      expect(expectJsonError(response, 401), name).toBe(expectedMessage);
      expect(response.headers['www-authenticate'], name).toBe('Bearer realm="jwks-server", error="invalid_token"');
    }

    expect((await me(app, `Bearer ${token}`)).statusCode).toBe(200);
    time.advance(60);
    expect((await me(app, `Bearer ${token}`)).statusCode).toBe(401);
  });

  it('requires the audience when one is configured, and accepts a token of any configured algorithm', async () => {
    const app = await readyApp({ audience: 'https://api.example', algorithms: ['ES256', 'EdDSA'] });
    const password = await register(app);
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const token = await tokenFor(app, { url: `/auth?alg=${alg}`, payload: { username: 'testor_1a2b3c4d', password } });
      expect(decodeJwt(token).aud).toBe('https://api.example');
      expect((await me(app, `Bearer ${token}`)).statusCode).toBe(200);
    }
    const token = await tokenFor(app, { payload: { username: 'testor_1a2b3c4d', password } });
    const signingKey = (await app.keyring.current()).signingKey('ES256');
    const otherAudience = await new SignJWT({ ...decodeJwt(token), aud: 'https://other.example' })
      .setProtectedHeader({ alg: 'ES256', kid: signingKey.kid })
      .sign(signingKey.privateKey);
    expect(expectJsonError(await me(app, `Bearer ${otherAudience}`), 401)).toBe('The token is invalid or expired');
  });

  it('refuses a demo token issued for a username before it was registered', async () => {
    const app = await readyApp();
    const demoToken = await tokenFor(app, { payload: { username: 'testor_1a2b3c4d' } });
    await registeredToken(app);
    const response = await me(app, `Bearer ${demoToken}`);
    expect(expectJsonError(response, 401)).toBe('The token was not issued to a registered user');
  });

  it.each(['POST', 'PUT', 'DELETE'] as const)('answers %s with 405 and Allow: GET, HEAD', async (method) => {
    const app = await readyApp();
    const response = await app.inject({ method, url: '/users/me' });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('GET, HEAD');
  });
});

describe('createUserStore', () => {
  it('passes a failure that is not a taken username or email on as it is', async () => {
    const db = await openTestDatabase();
    const users = createUserStore(db);
    await db.schema.createIndex('users_password_hash_unique').unique().on('users').column('password_hash').execute();
    await users.createUser({ username: 'first_user', email: 'first@test.com', passwordHash: 'the same hash' });
    const otherDuplicate = users.createUser({ username: 'second_user', email: 'second@test.com', passwordHash: 'the same hash' });
    await expect(otherDuplicate).rejects.toThrow(/users_password_hash_unique|users\.password_hash/);
    await expect(otherDuplicate).rejects.not.toBeInstanceOf(DuplicateUserError);

    await db.schema.dropTable('auth_logs').execute();
    await db.schema.dropTable('users').execute();
    const noTable = users.createUser({ username: 'third_user', email: 'third@test.com', passwordHash: 'another hash' });
    await expect(noTable).rejects.toThrow(/users/);
    await expect(noTable).rejects.not.toBeInstanceOf(DuplicateUserError);
  });
});
