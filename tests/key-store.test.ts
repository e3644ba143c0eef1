import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { createKeyStore } from '../src/keys/key-store.js';
import { insertCourseKey, openTestDatabase } from './helpers.js';
import { byKid, NOW, POLICY, states } from './key-fixtures.js';

const PKCS1_PEM = /^-----BEGIN RSA PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END RSA PRIVATE KEY-----\n$/;

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
});
