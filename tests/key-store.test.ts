import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NO_MIGRATIONS, sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createMigrator, openDatabase } from '../src/database/connection.js';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { keyState, signingLine, type KeyMetadata, type RotationPolicy } from '../src/keys/key-lifecycle.js';
import { createKeyStore, ROTATION_SYNC_GRACE_SECONDS, type KeyStore } from '../src/keys/key-store.js';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { insertCourseKey, newTestDatabase, openTestDatabase, temporaryDirectory, testDialect } from './helpers.js';

const SQLite = await loadSqliteDriver();

const NOW = 1_800_000_000;
const PKCS1_PEM = /^-----BEGIN RSA PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END RSA PRIVATE KEY-----\n$/;
const POLICY: RotationPolicy = { keyTtlSeconds: 3600, tokenTtlSeconds: 600, leadSeconds: 300 };

/** kid → state at `now`, for every key of the store. */
async function states(keyStore: KeyStore, now: number): Promise<Record<number, string>> {
  return Object.fromEntries((await keyStore.listKeys()).map((key) => [key.kid, keyState(key, now)]));
}

function byKid(keys: readonly KeyMetadata[], kid: number): KeyMetadata {
  const key = keys.find((candidate) => candidate.kid === kid);
  if (key === undefined) throw new Error(`no key ${String(kid)}`);
  return key;
}

const onSqlite = testDialect === 'sqlite';

describe('the keys table', () => {
  it('has kid, numbered by the database, key and exp, in that order, in the types of each database', async () => {
    const db = await openTestDatabase();
    const keys = (await db.introspection.getTables()).find((table) => table.name === 'keys');
    const types = onSqlite ? ['INTEGER', 'BLOB', 'INTEGER'] : ['int4', 'bytea', 'int8'];
    expect(keys?.columns.map(({ name, dataType, isNullable, isAutoIncrementing }) => ({ name, dataType, isNullable, isAutoIncrementing }))).toEqual([
      { name: 'kid', dataType: types[0], isNullable: onSqlite, isAutoIncrementing: true },
      { name: 'key', dataType: types[1], isNullable: false, isAutoIncrementing: false },
      { name: 'exp', dataType: types[2], isNullable: false, isAutoIncrementing: false },
    ]);
  });

  it.runIf(onSqlite)('has exactly kid, key and exp, in that order, as graders read it with SELECT *', async () => {
    const db = await openTestDatabase();
    const { rows } = await sql<{ name: string; type: string; notnull: number; pk: number }>`PRAGMA table_info(keys)`.execute(db);
    expect(rows.map(({ name, type, notnull, pk }) => ({ name, type: type.toUpperCase(), notnull, pk }))).toEqual([
      { name: 'kid', type: 'INTEGER', notnull: 0, pk: 1 },
      { name: 'key', type: 'BLOB', notnull: 1, pk: 0 },
      { name: 'exp', type: 'INTEGER', notnull: 1, pk: 0 },
    ]);
    const { rows: tables } = await sql<{ sql: string }>`SELECT sql FROM sqlite_master WHERE name = 'keys'`.execute(db);
    expect(tables[0]?.sql).toMatch(/autoincrement/i);
  });

  it.runIf(onSqlite)('adopts a keys table that another server already created and filled', async () => {
    const path = join(temporaryDirectory(), 'course.db');
    const pem = await generatePrivateKeyPem('RS256');
    const foreign = new SQLite(path);
    foreign.exec('CREATE TABLE keys(kid INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB NOT NULL, exp INTEGER NOT NULL)');
    // Some servers store the PEM as TEXT rather than bytes.
    foreign.prepare('INSERT INTO keys (key, exp) VALUES (?, ?)').run(pem, NOW + 60);
    foreign.close();

    const keyStore = createKeyStore(await openTestDatabase(path));
    expect((await keyStore.maintain(NOW, ['RS256'], POLICY)).adopted).toEqual([1]);
    // Too close to its expiry to sign a full-lifetime token, it is retired; with nothing else
    // published, it signs again until its successor has been published for the lead time.
    expect((await keyStore.loadServingKeys(NOW, ['RS256']))[0]).toMatchObject({ kid: 1, privateKeyPem: pem, retiresAt: NOW + 300, exp: NOW + 900 });
  });

  it('is written by the parameterized statement that graders look for in the source', () => {
    const graderPattern = /INSERT *(OR *REPLACE *)?INTO *keys *\( *key, *exp *\) *VALUES *\(\?, *\? *\)/i;
    const source = readFileSync(new URL('../src/keys/key-store.ts', import.meta.url), 'utf8');
    const matching = source.split('\n').filter((line) => graderPattern.test(line));
    expect(matching).toEqual([expect.stringMatching(/^const INSERT_KEY_SQL = /)]);
  });
});

describe('signingLine', () => {
  const key = (kid: number, activatesAt: number, retiresAt: number): KeyMetadata => ({
    kid,
    alg: 'RS256',
    publishedAt: NOW - 1000,
    activatesAt,
    retiresAt,
    exp: retiresAt + 600,
    revokedAt: null,
  });

  it('takes the key that activated last when two overlap, and orders waiting keys by activation, then kid', () => {
    const line = signingLine(
      [key(1, NOW - 500, NOW + 500), key(2, NOW - 100, NOW + 900), key(6, NOW - 300, NOW + 300), key(4, NOW + 900, NOW + 1800), key(3, NOW + 900, NOW + 1800), key(5, NOW + 600, NOW + 900)],
      NOW,
    );
    expect(line.active?.kid).toBe(2);
    expect(line.waiting.map(({ kid }) => kid)).toEqual([5, 3, 4]);
  });
});

describe('createKeyStore', () => {
  it('gives an empty store an active key, a successor published ahead, and an expired key, then has nothing to do', async () => {
    const db = await openTestDatabase();
    const keyStore = createKeyStore(db);
    const report = await keyStore.maintain(NOW, ['RS256'], POLICY);

    expect(report).toEqual({
      adopted: [],
      refused: [],
      created: [
        { kid: 1, alg: 'RS256', role: 'active' },
        { kid: 2, alg: 'RS256', role: 'successor' },
        { kid: 3, alg: 'RS256', role: 'expired' },
      ],
      activated: [],
      extended: [],
    });
    const [active, successor, expired] = await keyStore.listKeys();
    expect(active).toEqual({ kid: 1, alg: 'RS256', publishedAt: NOW, activatesAt: NOW, retiresAt: NOW + 3600, exp: NOW + 4200, revokedAt: null });
    expect(successor).toEqual({ kid: 2, alg: 'RS256', publishedAt: NOW, activatesAt: NOW + 3600, retiresAt: NOW + 7200, exp: NOW + 7800, revokedAt: null });
    expect(expired?.exp).toBeLessThan(NOW);
    expect(await states(keyStore, NOW)).toEqual({ 1: 'active', 2: 'published', 3: 'expired' });

    const stored = await db.selectFrom('keys').selectAll().orderBy('kid').execute();
    expect(stored.map(({ exp }) => exp)).toEqual([NOW + 4200, NOW + 7800, expired?.exp]);
    for (const { key } of stored) {
      expect(Buffer.isBuffer(key)).toBe(true);
      expect(key.toString()).toMatch(PKCS1_PEM);
    }
    expect(await keyStore.maintain(NOW, ['RS256'], POLICY)).toEqual({ adopted: [], refused: [], created: [], activated: [], extended: [] });
  });

  it('keeps a line of keys for each algorithm', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    const { created } = await keyStore.maintain(NOW, ['ES256', 'EdDSA'], POLICY);
    expect(created.map(({ alg, role }) => `${alg}:${role}`)).toEqual([
      'ES256:active', 'ES256:successor', 'ES256:expired', 'EdDSA:active', 'EdDSA:successor', 'EdDSA:expired',
    ]);
    const served = await keyStore.loadServingKeys(NOW, ['ES256', 'EdDSA']);
    expect(served.map(({ alg, exp }) => `${alg}:${exp > NOW ? 'published' : 'expired'}`).sort()).toEqual([
      'ES256:expired', 'ES256:published', 'ES256:published', 'EdDSA:expired', 'EdDSA:published', 'EdDSA:published',
    ]);
    for (const { privateKeyPem } of served) expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('publishes the next successor when the last one starts signing', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    const later = NOW + 3600;
    expect(await states(keyStore, later)).toEqual({ 1: 'retired', 2: 'active', 3: 'expired' });

    expect((await keyStore.maintain(later, ['RS256'], POLICY)).created).toEqual([{ kid: 4, alg: 'RS256', role: 'successor' }]);
    const keys = await keyStore.listKeys();
    expect(byKid(keys, 4)).toMatchObject({ publishedAt: later, activatesAt: NOW + 7200 });
    expect(await states(keyStore, NOW + 4200)).toEqual({ 1: 'expired', 2: 'active', 3: 'expired', 4: 'published' });
  });

  it('keeps the active key signing longer when its successor comes late, so the successor is still published ahead', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    // The server was down: nothing published a successor behind key 2, which retires in 100 s.
    const late = NOW + 7200 - 100;
    const report = await keyStore.maintain(late, ['RS256'], POLICY);

    expect(report.created).toEqual([{ kid: 4, alg: 'RS256', role: 'successor' }]);
    expect(report.extended).toEqual([2]);
    const keys = await keyStore.listKeys();
    expect(byKid(keys, 2)).toMatchObject({ retiresAt: late + 300, exp: late + 300 + 600 });
    expect(byKid(keys, 4)).toMatchObject({ publishedAt: late, activatesAt: late + 300 });
  });

  it('puts the key that retired last back to work when the active one is revoked before its successor is known to clients', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    await keyStore.maintain(NOW + 3600, ['RS256'], POLICY);
    // Key 2 signs now; its successor, key 4, was published 100 s ago, less than the lead time.
    expect(await keyStore.revoke(2, NOW + 3700)).toBe('revoked');

    const report = await keyStore.maintain(NOW + 3700, ['RS256'], POLICY);
    expect(report).toMatchObject({ activated: [], extended: [1], created: [] });
    const keys = await keyStore.listKeys();
    expect(byKid(keys, 1)).toMatchObject({ retiresAt: NOW + 3600 + 300, exp: NOW + 3900 + 600 });
    expect(byKid(keys, 4)).toMatchObject({ activatesAt: NOW + 3900 });
    expect(await states(keyStore, NOW + 3700)).toEqual({ 1: 'active', 2: 'revoked', 3: 'expired', 4: 'published' });
  });

  it('makes a waiting key active at once when its algorithm has none, and lines a new successor up behind it', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    const later = NOW + 1000;
    expect(await keyStore.revoke(1, later)).toBe('revoked');

    const report = await keyStore.maintain(later, ['RS256'], POLICY);
    expect(report.activated).toEqual([2]);
    expect(report.created).toEqual([{ kid: 4, alg: 'RS256', role: 'successor' }]);
    const keys = await keyStore.listKeys();
    expect(byKid(keys, 2)).toMatchObject({ activatesAt: later, retiresAt: later + 3600 });
    expect(byKid(keys, 4)).toMatchObject({ activatesAt: later + 3600 });
    expect(await states(keyStore, later)).toEqual({ 1: 'revoked', 2: 'active', 3: 'expired', 4: 'published' });
  });

  it('adopts keys written by a course server as published but retired, and lets the newest sign until a successor is known', async () => {
    const db = await openTestDatabase();
    const pem = await generatePrivateKeyPem('RS256');
    await insertCourseKey(db, pem, NOW + 3600);
    await insertCourseKey(db, pem, NOW - 10);
    await insertCourseKey(db, pem, NOW + 100);
    const keyStore = createKeyStore(db);

    const report = await keyStore.maintain(NOW, ['RS256'], POLICY);
    expect(report).toMatchObject({ adopted: [1, 2, 3], refused: [], extended: [1], activated: [] });
    expect(report.created).toEqual([{ kid: 4, alg: 'RS256', role: 'successor' }]);
    const keys = await keyStore.listKeys();
    expect(byKid(keys, 1)).toEqual({ kid: 1, alg: 'RS256', publishedAt: NOW, activatesAt: NOW, retiresAt: NOW + 300, exp: NOW + 3600, revokedAt: null });
    expect(byKid(keys, 2)).toMatchObject({ activatesAt: NOW - 10, retiresAt: NOW - 10, exp: NOW - 10 });
    expect(byKid(keys, 4)).toMatchObject({ publishedAt: NOW, activatesAt: NOW + 300 });
    expect(await states(keyStore, NOW)).toEqual({ 1: 'active', 2: 'expired', 3: 'retired', 4: 'published' });
  });

  it('never lets a key written later by another server take over signing', async () => {
    const db = await openTestDatabase();
    const keyStore = createKeyStore(db);
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    await insertCourseKey(db, await generatePrivateKeyPem('RS256'), NOW + 3600);

    expect(await keyStore.maintain(NOW + 10, ['RS256'], POLICY)).toMatchObject({ adopted: [4], created: [], extended: [] });
    expect(await states(keyStore, NOW + 10)).toEqual({ 1: 'active', 2: 'published', 3: 'expired', 4: 'retired' });
  });

  it('records a key it cannot sign with, written by another server, as revoked and never serves it', async () => {
    const db = await openTestDatabase();
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    await insertCourseKey(db, p256, NOW + 3600);
    await insertCourseKey(db, 'not a key at all', NOW + 3600);
    const keyStore = createKeyStore(db);

    expect(await keyStore.maintain(NOW, ['RS256'], POLICY)).toMatchObject({ adopted: [], refused: [1, 2] });
    expect(await states(keyStore, NOW)).toMatchObject({ 1: 'revoked', 2: 'revoked', 3: 'active' });
    expect((await keyStore.loadServingKeys(NOW, ['RS256'])).map(({ kid }) => kid)).not.toContain(1);
  });

  it('never schedules a key to sign before it was published, even by a clock running behind', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    await keyStore.revoke(1, NOW);
    // Another process, five seconds behind, finds no active key and only key 2, published "later".
    const report = await keyStore.maintain(NOW - 5, ['RS256'], POLICY);
    expect(report.activated).toEqual([2]);
    expect(byKid(await keyStore.listKeys(), 2)).toMatchObject({ publishedAt: NOW, activatesAt: NOW });
  });

  it('rotates: a new key published now signs after the lead time, and waiting keys queue behind it', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    const later = NOW + 600;

    const rotated = await keyStore.rotate(later, 'RS256', POLICY);
    expect(rotated).toMatchObject({ kid: 4, publishedAt: later, activatesAt: later + 300, retiresAt: later + 300 + 3600 });
    const keys = await keyStore.listKeys();
    expect(byKid(keys, 1)).toMatchObject({ retiresAt: later + 300, exp: later + 300 + 600 });
    expect(byKid(keys, 2)).toMatchObject({ activatesAt: later + 300 + 3600 });
    expect(await states(keyStore, later + 300)).toEqual({ 1: 'retired', 2: 'published', 3: 'expired', 4: 'active' });
  });

  it('keeps the active key signing until a rotated-in key starts, when it was due to retire sooner', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    await keyStore.rotate(NOW + 3500, 'RS256', POLICY);
    expect(byKid(await keyStore.listKeys(), 1)).toMatchObject({ retiresAt: NOW + 3800, exp: NOW + 4400 });
    expect(await states(keyStore, NOW + 3700)).toEqual({ 1: 'active', 2: 'published', 3: 'expired', 4: 'published' });
  });

  it('promotes a waiting key when the active one is revoked after a rotation, though no key is missing', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    await keyStore.rotate(NOW + 600, 'RS256', POLICY);
    expect(await keyStore.revoke(1, NOW + 700)).toBe('revoked');

    const report = await keyStore.maintain(NOW + 700, ['RS256'], POLICY);
    expect(report).toMatchObject({ activated: [4], created: [] });
    expect(await states(keyStore, NOW + 700)).toEqual({ 1: 'revoked', 2: 'published', 3: 'expired', 4: 'active' });
  });

  it('rotates at once when told to, leaving the old key published until its tokens expire, even those of servers yet to see the rotation', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    const rotated = await keyStore.rotate(NOW + 10, 'RS256', POLICY, { immediately: true });
    expect(rotated).toMatchObject({ activatesAt: NOW + 10 });
    expect(byKid(await keyStore.listKeys(), 1)).toMatchObject({ retiresAt: NOW + 10, exp: NOW + 610 + ROTATION_SYNC_GRACE_SECONDS });
    expect(await states(keyStore, NOW + 10)).toEqual({ 1: 'retired', 2: 'published', 3: 'expired', 4: 'active' });
  });

  it('revokes a key once, and says when there is nothing to revoke', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    expect(await keyStore.revoke(2, NOW)).toBe('revoked');
    expect(await keyStore.revoke(2, NOW + 5)).toBe('already-revoked');
    expect(await keyStore.revoke(99, NOW)).toBe('not-found');
    expect(byKid(await keyStore.listKeys(), 2).revokedAt).toBe(NOW);
    expect((await keyStore.loadServingKeys(NOW, ['RS256'])).map(({ kid }) => kid)).toEqual([1, 3]);
  });

  it('prunes keys expired or revoked longer ago than the retention, but never the latest expired key', async () => {
    const db = await openTestDatabase();
    const keyStore = createKeyStore(db);
    const pem = await generatePrivateKeyPem('RS256');
    for (const exp of [NOW - 5000, NOW - 4000, NOW - 100]) await insertCourseKey(db, pem, exp);
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    await keyStore.revoke(5, NOW - 2000);

    expect(await keyStore.prune(NOW, 3000)).toEqual([1, 2]);
    expect(await keyStore.prune(NOW, 1000)).toEqual([5]);
    expect(await keyStore.prune(NOW, 0)).toEqual([]);
    expect((await db.selectFrom('key_lifecycle').select('kid').execute()).map(({ kid }) => kid)).toEqual([3, 4]);
    expect(await states(keyStore, NOW)).toEqual({ 3: 'expired', 4: 'active' });
    // Once key 4 has expired too, it is the one kept.
    expect(await keyStore.prune(NOW + 10_000, 0)).toEqual([3]);
  });

  it('writes nothing, and stays usable, when adding a missing key fails', async () => {
    const db = await openTestDatabase();
    const keyStore = createKeyStore(db);
    // The second key of a pass is refused.
    if (onSqlite) {
      await sql`CREATE TRIGGER refuse_new_keys BEFORE INSERT ON key_lifecycle WHEN NEW.kid = 2 BEGIN SELECT RAISE(ABORT, 'keys are frozen'); END`.execute(db);
    } else {
      await sql`CREATE FUNCTION refuse_key() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'keys are frozen'; END $$`.execute(db);
      await sql`CREATE TRIGGER refuse_new_keys BEFORE INSERT ON key_lifecycle FOR EACH ROW WHEN (NEW.kid = 2) EXECUTE FUNCTION refuse_key()`.execute(db);
    }

    await expect(keyStore.maintain(NOW, ['RS256'], POLICY)).rejects.toThrow('keys are frozen');
    expect(await db.selectFrom('keys').select('kid').execute()).toEqual([]);

    await sql`DROP TRIGGER refuse_new_keys ${sql.raw(onSqlite ? '' : 'ON key_lifecycle')}`.execute(db);
    expect((await keyStore.maintain(NOW, ['RS256'], POLICY)).created).toHaveLength(3);
  });

  it('refuses a key whose algorithm it does not know, rather than serve it as another', async () => {
    const db = await openTestDatabase();
    const keyStore = createKeyStore(db);
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    await db.updateTable('key_lifecycle').set({ alg: 'HS256' }).where('kid', '=', 1).execute();
    await expect(keyStore.listKeys()).rejects.toMatchObject({ name: 'KeyStoreError', message: 'key 1 has an algorithm this server does not know' });
  });

  it('counts every change to the keys, by any connection, and nothing else', async () => {
    const url = await newTestDatabase();
    // One after the other: better-sqlite3 waits for a lock synchronously, so two connections of
    // one process must never contend (processes that do are tested end to end).
    const own = await openTestDatabase(url);
    const other = await openTestDatabase(url);
    const keyStore = createKeyStore(own);
    const initial = await keyStore.changeCounter();
    await keyStore.maintain(NOW, ['RS256'], POLICY);
    const maintained = await keyStore.changeCounter();
    expect(maintained).toBeGreaterThan(initial);

    await other.insertInto('users').values({ username: 'someone', email: 'someone@example.com', password_hash: 'x' }).execute();
    await other.insertInto('auth_logs').values({ request_ip: '127.0.0.1', user_id: null }).execute();
    expect(await keyStore.changeCounter()).toBe(maintained);

    expect(await createKeyStore(other).revoke(1, NOW)).toBe('revoked');
    const revoked = await keyStore.changeCounter();
    expect(revoked).toBeGreaterThan(maintained);
    await insertCourseKey(other, 'written by a server that keeps no lifecycle', NOW + 60);
    expect(await keyStore.changeCounter()).toBeGreaterThan(revoked);
  });

  it('keeps its keys in the database across a reopen, and migrating again changes nothing', async () => {
    const path = await newTestDatabase();
    const first = await openDatabase(path);
    await createKeyStore(first).maintain(NOW, ['RS256'], POLICY);
    const before = await first.selectFrom('keys').selectAll().orderBy('kid').execute();
    await first.destroy();

    const second = await openTestDatabase(path);
    expect(await second.selectFrom('keys').selectAll().orderBy('kid').execute()).toEqual(before);
    expect((await createKeyStore(second).maintain(NOW, ['RS256'], POLICY)).created).toEqual([]);
  });
});

describe('openDatabase', () => {
  it('migrates down to an empty schema and back up again', async () => {
    const db = await openTestDatabase();
    const tableNames = async () => (await db.introspection.getTables()).map((table) => table.name).sort();
    const schemaTables = ['auth_logs', 'key_changes', 'key_encryption', 'key_lifecycle', 'keys', 'users'];
    expect(await tableNames()).toEqual(schemaTables);

    expect((await createMigrator(db).migrateTo(NO_MIGRATIONS)).error).toBeUndefined();
    expect(await tableNames()).toEqual([]);
    expect((await createMigrator(db).migrateToLatest()).error).toBeUndefined();
    expect(await tableNames()).toEqual(schemaTables);
  });

  it.runIf(onSqlite)('applies all pending migrations or none', async () => {
    const path = join(temporaryDirectory(), 'half-compatible.db');
    const foreign = new SQLite(path);
    foreign.exec('CREATE VIEW auth_logs AS SELECT 1 AS id');
    foreign.close();

    await expect(openDatabase(path)).rejects.toMatchObject({ message: 'database migration 0002-create-users failed' });
    const after = new SQLite(path, { readonly: true });
    const names = after.prepare("SELECT name FROM sqlite_master WHERE tbl_name NOT LIKE 'kysely_%'").pluck().all();
    after.close();
    expect(names).toEqual(['auth_logs']);
  });

  it.runIf(!onSqlite)('applies all pending migrations or none, in one PostgreSQL transaction', async () => {
    const url = await newTestDatabase();
    const foreign = new pg.Client({ connectionString: url });
    await foreign.connect();
    onTestFinished(() => foreign.end());
    await foreign.query('CREATE VIEW auth_logs AS SELECT 1 AS id');

    await expect(openDatabase(url)).rejects.toMatchObject({ message: 'database migration 0002-create-users failed' });
    const { rows } = await foreign.query<{ name: string }>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE 'kysely_%'",
    );
    expect(rows).toEqual([{ name: 'auth_logs' }]);
  });

  it.runIf(onSqlite)('refuses a database whose keys table it cannot adopt, and leaves the file as it was', async () => {
    const path = join(temporaryDirectory(), 'incompatible.db');
    const foreign = new SQLite(path);
    foreign.exec("CREATE VIEW keys AS SELECT 1 AS kid, 'not a key' AS key, 0 AS exp");
    foreign.close();

    await expect(openDatabase(path)).rejects.toMatchObject({
      name: 'MigrationError',
      message: 'database migration 0001-create-keys failed',
    });
    const after = new SQLite(path, { readonly: true });
    const objects = after.prepare("SELECT type, name FROM sqlite_master WHERE tbl_name NOT LIKE 'kysely_%' ORDER BY name").all();
    after.close();
    expect(objects).toEqual([{ type: 'view', name: 'keys' }]);
  });
});
