import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createUserStore, DuplicateUserError } from '../src/users/user-store.js';
import { expectJsonError, openTestDatabase, readyApp, testDialect } from './helpers.js';
import { expectRecentTimestamp, register, userRows } from './users-helpers.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

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
