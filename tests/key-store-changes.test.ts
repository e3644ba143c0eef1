import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/database/connection.js';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { createKeyStore, ROTATION_SYNC_GRACE_SECONDS } from '../src/keys/key-store.js';
import { insertCourseKey, newTestDatabase, openTestDatabase, testDialect } from './helpers.js';
import { byKid, NOW, POLICY, states } from './key-fixtures.js';

const onSqlite = testDialect === 'sqlite';

describe('createKeyStore', () => {
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
