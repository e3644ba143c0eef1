import { generateKeyPairSync } from 'node:crypto';
import { type Kysely } from 'kysely';
import { createLocalJWKSet, errors, jwtVerify } from 'jose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { openDatabase } from '../src/database/connection.js';
import type { Database } from '../src/database/schema.js';
import { createKeyStore, type KeyStore } from '../src/key-store.js';
import { createKeyring, UnusableKeyError, type Keyring } from '../src/keyring.js';
import { createSigner } from '../src/signer.js';
import { decodeToken, manualClock, PRIVATE_JWK_MEMBERS, type ManualClock } from './helpers.js';

const KEY_TTL = 3600;
const TOKEN_TTL = 600;
const ISSUER = 'https://issuer.example';

interface Fixture {
  db: Kysely<Database>;
  keyStore: KeyStore;
  keyring: Keyring;
  time: ManualClock;
  generated: number[][];
}

async function fixture(keyTtlSeconds = KEY_TTL): Promise<Fixture> {
  const db = await openDatabase(':memory:');
  onTestFinished(async () => {
    await db.destroy();
  });
  const keyStore = createKeyStore(db);
  const time = manualClock();
  const generated: number[][] = [];
  const keyring = createKeyring({
    keyStore,
    keyTtlSeconds,
    clock: time.clock,
    onKeysGenerated: (kids) => generated.push([...kids]),
  });
  return { db, keyStore, keyring, time, generated };
}

describe('createKeyring', () => {
  it('generates the keys it needs on first use and publishes only the unexpired one', async () => {
    const { keyring, generated, time } = await fixture();
    const snapshot = await keyring.current();

    expect(generated).toEqual([[1, 2]]);
    expect(snapshot.signingKey).toMatchObject({ kid: '1', exp: time.now() + KEY_TTL });
    expect(snapshot.expiredKey.kid).toBe('2');
    expect(snapshot.expiredKey.exp).toBeLessThan(time.now());
    expect(snapshot.jwks.keys.map((jwk) => jwk.kid)).toEqual(['1']);
    expect(snapshot.findPublishedKey('1')).toBe(snapshot.jwks.keys[0]);
    expect(snapshot.findPublishedKey('2')).toBeUndefined();
  });

  it('publishes RSA public members only', async () => {
    const { keyring } = await fixture();
    const [jwk] = (await keyring.current()).jwks.keys;
    expect(Object.keys(jwk ?? {})).toEqual(['kty', 'kid', 'use', 'alg', 'n', 'e']);
    expect(jwk).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256', e: 'AQAB' });
    expect(Buffer.from(jwk?.n ?? '', 'base64url')).toHaveLength(256);
    for (const member of PRIVATE_JWK_MEMBERS) expect(jwk).not.toHaveProperty(member);
  });

  it('serves the same snapshot, without touching the store, until a key in it expires', async () => {
    const { keyring, time } = await fixture();
    const first = await keyring.current();
    time.advance(KEY_TTL - 1);
    expect(await keyring.current()).toBe(first);
  });

  it('replaces an expired signing key and stops publishing it', async () => {
    const { keyring, time, generated } = await fixture();
    const first = await keyring.current();
    time.advance(KEY_TTL);

    const second = await keyring.current();
    expect(second).not.toBe(first);
    expect(generated).toEqual([[1, 2], [3]]);
    expect(second.signingKey.kid).toBe('3');
    expect(second.expiredKey.kid).toBe('1');
    expect(second.jwks.keys.map((jwk) => jwk.kid)).toEqual(['3']);
  });

  it('rebuilds once when many requests arrive at the moment of expiry', async () => {
    const { keyring, time, generated } = await fixture();
    await keyring.current();
    time.advance(KEY_TTL);
    const snapshots = await Promise.all(Array.from({ length: 20 }, () => keyring.current()));
    expect(new Set(snapshots).size).toBe(1);
    expect(generated).toEqual([[1, 2], [3]]);
  });

  it('refuses an unreadable key without repeating its contents', async () => {
    const { keyStore, keyring, time } = await fixture();
    const garbage = '-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ1dC1icm9rZW4=\n-----END RSA PRIVATE KEY-----\n';
    await keyStore.insertKey(garbage, time.now() + 60);

    const failure = keyring.current();
    await expect(failure).rejects.toThrow(UnusableKeyError);
    await expect(failure).rejects.toThrow(/^key 1 in the store is not a readable private key$/);
  });

  it('refuses a key that is not RSA', async () => {
    const { keyStore, keyring, time } = await fixture();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await keyStore.insertKey(privateKey.export({ type: 'sec1', format: 'pem' }).toString(), time.now() + 60);
    await expect(keyring.current()).rejects.toThrow(/^key 1 in the store is not an RSA key$/);
  });
});

describe('createSigner', () => {
  async function signerFixture(keyTtlSeconds = KEY_TTL) {
    const setup = await fixture(keyTtlSeconds);
    const signer = createSigner({ keyring: setup.keyring, issuer: ISSUER, tokenTtlSeconds: TOKEN_TTL, clock: setup.time.clock });
    return { ...setup, signer };
  }

  it('issues an RS256 JWT that verifies against the published keys', async () => {
    const { signer, keyring, time } = await signerFixture();
    const token = await signer.issueToken({ subject: 'alice' });
    const { header, claims } = decodeToken(token);

    expect(header).toEqual({ alg: 'RS256', kid: '1', typ: 'JWT' });
    expect(claims).toEqual({ iss: ISSUER, sub: 'alice', iat: time.now(), exp: time.now() + TOKEN_TTL });
    const jwks = createLocalJWKSet((await keyring.current()).jwks);
    const { payload } = await jwtVerify(token, jwks, { algorithms: ['RS256'], currentDate: new Date(time.now() * 1000) });
    expect(payload.sub).toBe('alice');
  });

  it('never lets a token outlive its signing key', async () => {
    const { signer, keyring, time } = await signerFixture();
    await keyring.current();
    time.advance(KEY_TTL - 60);
    const { claims } = decodeToken(await signer.issueToken({ subject: 'bob' }));
    expect(claims.exp).toBe(time.now() + 60);
  });

  it('signs an expired token with the expired key, which is not published', async () => {
    const { signer, keyring, time } = await signerFixture();
    const token = await signer.issueToken({ subject: 'carol', expired: true });
    const snapshot = await keyring.current();
    const { header, claims } = decodeToken(token);

    expect(header.kid).toBe(snapshot.expiredKey.kid);
    expect(claims.exp).toBe(snapshot.expiredKey.exp);
    expect(claims.exp).toBeLessThan(time.now());
    await expect(jwtVerify(token, createLocalJWKSet(snapshot.jwks))).rejects.toThrow(errors.JWKSNoMatchingKey);
  });
});
