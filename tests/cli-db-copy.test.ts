/**
 * `jwks-server db copy --to <DATABASE_URL>`: a server's whole state moved from SQLite to
 * PostgreSQL and back, after which servers on the copy serve the same keys, verify the tokens
 * issued before, accept the same passwords and go on numbering where the source stopped.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { sql, type Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { isoSecond } from '../src/database/timestamps.js';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { runCli, seededDatabase } from './cli-helpers.js';
import { basic, newPostgresDatabase, readDatabase, readyApp, temporaryDirectory } from './helpers.js';
import { accessToken, postForm, registerClient } from './oauth-helpers.js';

const SECRET = 'correct horse battery staple';
const SQLite = await loadSqliteDriver();

interface Issued {
  token: string;
  accessToken: string;
  clientSecret: string;
  passwords: Map<string, string>;
}

/** A source as a server leaves it: a course-style TEXT key, keys of its own, users who logged in, an OAuth client and a revoked token. */
async function serveSource(databaseUrl: string): Promise<Issued> {
  await readDatabase(databaseUrl, async (db) => {
    const pem = await generatePrivateKeyPem('RS256');
    // The course's servers stored the PEM as TEXT.
    await sql`INSERT INTO keys (key, exp) VALUES (${pem}, ${Math.floor(Date.now() / 1000) + 7200})`.execute(db);
  });
  const app = await readyApp({ databaseUrl, keyEncryptionSecret: SECRET, rateLimit: false, algorithms: ['RS256', 'ES256'] });
  const passwords = new Map<string, string>();
  for (const username of ['alice', 'bob', 'carol']) {
    const response = await app.inject({ method: 'POST', url: '/register', payload: { username, email: `${username}@example.com` } });
    passwords.set(username, response.json<{ password: string }>().password);
  }
  for (const [username, password] of passwords) expect((await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic(username, password) } })).statusCode).toBe(200);
  const { token } = (await app.inject({ method: 'POST', url: '/auth' })).json<{ token: string }>();
  const client = await registerClient(app, 'billing', { scopes: ['read'] });
  const revoked = await accessToken(app, client);
  expect((await postForm(app, '/oauth/revoke', { token: revoked }, client.authorization)).statusCode).toBe(200);
  await app.close();
  // A key pruned after the servers stopped: its kid was handed out, and must never name another key.
  await readDatabase(databaseUrl, async (db) => {
    const { kid } = await db.insertInto('keys').values({ key: Buffer.from('pruned'), exp: 0 }).returning('kid').executeTakeFirstOrThrow();
    await db.deleteFrom('keys').where('kid', '=', kid).execute();
  });
  return { token, accessToken: revoked, clientSecret: client.secret, passwords };
}

/** Every copied row, each table in its order, timestamps to the second and keys as bytes, for comparing databases of either kind. */
function contents(databaseUrl: string) {
  const ts = (value: string | Date | null) => (value === null ? null : isoSecond(value));
  return readDatabase(databaseUrl, async (db) => ({
    keys: (await db.selectFrom('keys').selectAll().orderBy('kid').execute()).map((row) => ({ ...row, key: Buffer.from(row.key).toString('base64') })),
    lifecycles: await db.selectFrom('key_lifecycle').selectAll().orderBy('kid').execute(),
    encryption: await db.selectFrom('key_encryption').selectAll().execute(),
    users: (await db.selectFrom('users').selectAll().orderBy('id').execute()).map((row) => ({ ...row, date_registered: ts(row.date_registered), last_login: ts(row.last_login) })),
    authLogs: (await db.selectFrom('auth_logs').selectAll().orderBy('id').execute()).map((row) => ({ ...row, request_timestamp: ts(row.request_timestamp) })),
    clients: (await db.selectFrom('oauth_clients').selectAll().orderBy('client_id').execute()).map((row) => ({ ...row, created_at: ts(row.created_at), disabled_at: ts(row.disabled_at) })),
    revocations: await db.selectFrom('oauth_revocations').selectAll().orderBy('jti').execute(),
  }));
}

async function jwksOf(app: FastifyInstance) {
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  return { etag: response.headers.etag, jwks: response.json<JSONWebKeySet>() };
}

/** The JWKS a server started on the database serves, and its ETag; the server is closed again. */
async function jwksServedOn(databaseUrl: string) {
  const app = await readyApp({ databaseUrl, keyEncryptionSecret: SECRET, algorithms: ['RS256', 'ES256'] });
  const served = await jwksOf(app);
  await app.close();
  return served;
}

const postgresDatabaseName = (url: string) => new URL(url).pathname.slice(1);

async function highestId(databaseUrl: string, table: 'keys' | 'users' | 'auth_logs'): Promise<number> {
  return readDatabase(databaseUrl, async (db) => {
    const untyped = db as unknown as Kysely<Record<string, { id: number; kid: number }>>;
    const row = await untyped.selectFrom(table).select((eb) => eb.fn.max(table === 'keys' ? 'kid' : 'id').as('highest')).executeTakeFirstOrThrow();
    return row.highest;
  });
}

/**
 * A server on the copy: the JWKS byte for byte (same ETag), the source's tokens verified, the
 * passwords and client secret accepted, the revoked token still refused; and new rows numbered
 * after the source's highest, the pruned kid included.
 */
async function expectServesAsSource(databaseUrl: string, reference: Awaited<ReturnType<typeof jwksServedOn>>, issued: Issued, prunedKid: number) {
  const app = await readyApp({ databaseUrl, keyEncryptionSecret: SECRET, rateLimit: false, algorithms: ['RS256', 'ES256'] });
  expect(await jwksOf(app)).toEqual(reference);
  const keySet = createLocalJWKSet(reference.jwks);
  expect((await jwtVerify(issued.token, keySet)).payload.sub).toBe('demo-user');
  for (const [username, password] of issued.passwords) {
    const response = await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic(username, password) } });
    expect(response.statusCode, username).toBe(200);
  }
  expect((await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic('alice', 'not her password') } })).statusCode).toBe(401);
  expect((await accessToken(app, { clientId: 'billing', secret: issued.clientSecret, authorization: basic('billing', issued.clientSecret) }))).toBeTypeOf('string');
  const introspection = await postForm(app, '/oauth/introspect', { token: issued.accessToken }, basic('billing', issued.clientSecret));
  expect(introspection.json()).toEqual({ active: false });

  const usersBefore = await highestId(databaseUrl, 'users');
  const username = `newcomer_${String(usersBefore)}`;
  const registered = await app.inject({ method: 'POST', url: '/register', payload: { username, email: `${username}@example.com` } });
  expect(registered.statusCode).toBe(201);
  expect(await highestId(databaseUrl, 'users')).toBe(usersBefore + 1);
  const rotated = await app.keyStore.rotate(Math.floor(Date.now() / 1000), 'RS256', { keyTtlSeconds: 3600, tokenTtlSeconds: 900, leadSeconds: 300 });
  expect(rotated.kid).toBe(prunedKid + 1);
  await app.close();
}

describe('jwks-server db copy', () => {
  it('moves a server from SQLite to PostgreSQL and back: same JWKS and ETag, tokens, passwords, clients, revocations, and numbering', async () => {
    const sqlitePath = join(temporaryDirectory(), 'keys.db');
    const issued = await serveSource(sqlitePath);
    const prunedKid = (await highestId(sqlitePath, 'keys')) + 1;
    const reference = await jwksServedOn(sqlitePath);
    const sourceContents = await contents(sqlitePath);
    expect(sourceContents.encryption).toHaveLength(1);
    expect(sourceContents.revocations).toHaveLength(1);

    const postgresUrl = await newPostgresDatabase();
    // Not UTC, as many servers are set: SQLite's timestamps carry no zone, and must not take this one.
    await readDatabase(postgresUrl, (db) => sql`ALTER DATABASE ${sql.id(postgresDatabaseName(postgresUrl))} SET timezone = 'America/New_York'`.execute(db));
    const toPostgres = await runCli(['db', 'copy', '--to', postgresUrl], { DATABASE_URL: sqlitePath });
    expect(toPostgres).toMatchObject({ code: 0, stderr: '' });
    expect(toPostgres.stdout).toMatch(/^copied to postgres:\/\/.+: \d+ keys, 1 key-encryption rows, 3 users, 4 auth logs, 1 OAuth clients, 1 revoked tokens$/);
    expect(await contents(postgresUrl)).toEqual(sourceContents);
    await expectServesAsSource(postgresUrl, reference, issued, prunedKid);

    // And back, from what the server on PostgreSQL made meanwhile: its key, its user and their logs too.
    const postgresContents = await contents(postgresUrl);
    const postgresReference = await jwksServedOn(postgresUrl);
    const backPath = join(temporaryDirectory(), 'moved-back.db');
    const toSqlite = await runCli(['db', 'copy', '--to', backPath], { DATABASE_URL: postgresUrl });
    expect(toSqlite).toMatchObject({ code: 0, stderr: '' });
    expect(await contents(backPath)).toEqual(postgresContents);
    await expectServesAsSource(backPath, postgresReference, issued, prunedKid + 1);
  });

  it('copies a database as the course\'s servers leave it, PEM as TEXT, into either kind, numbering on after rows since deleted', async () => {
    const sourcePath = join(temporaryDirectory(), 'course.db');
    const pem = await generatePrivateKeyPem('RS256');
    await readDatabase(sourcePath, async (db) => {
      await sql`INSERT INTO keys (key, exp) VALUES (${pem}, ${Math.floor(Date.now() / 1000) + 3600})`.execute(db);
      await sql`INSERT INTO users (username, password_hash, email) VALUES ('alice', 'not-a-hash', NULL)`.execute(db);
      // Every auth log deleted: the table is empty, and its numbers are used up to 7.
      for (let logged = 0; logged < 7; logged += 1) await db.insertInto('auth_logs').values({ request_ip: '192.0.2.1', user_id: 1 }).execute();
      await db.deleteFrom('auth_logs').execute();
    });
    const sourceContents = await contents(sourcePath);
    expect(sourceContents.keys[0]?.key).toBe(Buffer.from(pem).toString('base64'));

    for (const target of [await newPostgresDatabase(), join(temporaryDirectory(), 'copy.db')]) {
      const result = await runCli(['db', 'copy', '--to', target], { DATABASE_URL: sourcePath });
      expect(result, target).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).toMatch(/: 1 keys, 0 key-encryption rows, 1 users, 0 auth logs, 0 OAuth clients, 0 revoked tokens$/);
      expect(await contents(target)).toEqual(sourceContents);
      const next = await readDatabase(target, (db) => db.insertInto('auth_logs').values({ request_ip: '192.0.2.2', user_id: 1 }).returning('id').executeTakeFirstOrThrow());
      expect(next.id, target).toBe(8);
    }
  });

  it.each([
    ['text', "'last tuesday'", '"last tuesday"'],
    ['a number', '1700000000', '1700000000'],
  ])('stops at a timestamp it cannot read (%s), naming the column, and writes nothing', async (_kind, stored, shown) => {
    const sourcePath = await seededDatabase();
    await readDatabase(sourcePath, (db) => sql`INSERT INTO users (username, password_hash, date_registered) VALUES ('alice', 'not-a-hash', ${sql.raw(stored)})`.execute(db));
    const targetPath = join(temporaryDirectory(), 'copy.db');

    const result = await runCli(['db', 'copy', '--to', targetPath], { DATABASE_URL: sourcePath });

    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`jwks-server: users.date_registered holds ${shown}, which is not a UTC timestamp`);
    const target = await contents(targetPath);
    expect([target.keys, target.users]).toEqual([[], []]);
  });

  it('refuses a source without keys, which would have the servers on the copy make new ones', async () => {
    const sourcePath = join(temporaryDirectory(), 'keys.db');
    await readDatabase(sourcePath, () => Promise.resolve());
    const targetPath = join(temporaryDirectory(), 'copy.db');

    const result = await runCli(['db', 'copy', '--to', targetPath], { DATABASE_URL: sourcePath });

    expect(result.code).toBe(1);
    expect(result.stderr).toBe('jwks-server: the source database holds no keys: is DATABASE_URL the database the servers use?');
  });

  it('refuses a target that holds anything, and leaves it as it was', async () => {
    const sourcePath = await seededDatabase();
    const targetPath = await seededDatabase({ algorithms: ['ES256'] });
    const before = await contents(targetPath);

    const result = await runCli(['db', 'copy', '--to', targetPath], { DATABASE_URL: sourcePath });

    expect(result.code).toBe(1);
    expect(result.stderr).toBe('jwks-server: the target database is not empty (its keys table has rows): a copy goes only into an empty database');
    expect(await contents(targetPath)).toEqual(before);
  });

  it('writes nothing at all when a row cannot be copied, the keys before it included', async () => {
    const sourcePath = await seededDatabase();
    // An auth log naming a user who is not there, as a database written without foreign keys may hold.
    const source = new SQLite(sourcePath);
    source.pragma('foreign_keys = OFF');
    source.prepare("INSERT INTO auth_logs (request_ip, user_id) VALUES ('192.0.2.1', 42)").run();
    source.close();
    const postgresUrl = await newPostgresDatabase();

    const result = await runCli(['db', 'copy', '--to', postgresUrl], { DATABASE_URL: sourcePath });

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^jwks-server: cannot copy auth_logs: .*foreign key/);
    const target = await contents(postgresUrl);
    expect(Object.values(target).map((rows) => rows.length)).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it.each([
    ['no --to', ['db', 'copy'], /needs --to/],
    ['an operand', ['db', 'copy', 'other.db', '--to', 'x.db'], /takes no operands/],
    ['an in-memory target', ['db', 'copy', '--to', ':memory:'], /in-memory/],
    ['a target of another kind', ['db', 'copy', '--to', 'mysql://db.example/keys'], /--to must be a SQLite path/],
    ['backup with --to', ['db', 'backup', 'copy.db', '--to', 'x.db'], /backup takes no --to/],
  ])('tells %s is wrong usage, with exit code 2, before opening any database', async (_name, args, message) => {
    const databasePath = join(temporaryDirectory(), 'keys.db');
    const result = await runCli(args, { DATABASE_URL: databasePath });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(existsSync(databasePath)).toBe(false);
    expect(existsSync('x.db')).toBe(false);
  });
});
