import { createLocalJWKSet, errors, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { AlgorithmList, SigningAlgorithm } from '../src/keys/algorithms.js';
import type { RotationPolicy } from '../src/keys/key-lifecycle.js';
import { createKeyStore, type MaintenanceReport } from '../src/keys/key-store.js';
import { createKeyring } from '../src/keys/keyring.js';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { createSigner } from '../src/tokens/signer.js';
import { decodeToken, insertCourseKey, manualClock, openTestDatabase, PRIVATE_JWK_MEMBERS, newTestDatabase } from './helpers.js';

const POLICY: RotationPolicy = { keyTtlSeconds: 3600, tokenTtlSeconds: 600, leadSeconds: 300 };
const ISSUER = 'https://issuer.example';

async function fixture({ algorithms = ['RS256'] as AlgorithmList, path = undefined as string | undefined } = {}) {
  const db = await openTestDatabase(path);
  const keyStore = createKeyStore(db);
  const time = manualClock(1_800_000_000);
  const reports: MaintenanceReport[] = [];
  const pruned: number[][] = [];
  const keyring = createKeyring({
    keyStore,
    algorithms,
    policy: POLICY,
    expiredKeyRetentionSeconds: 7200,
    clock: time.clock,
    onMaintenance: (report) => reports.push(report),
    onPruned: (kids) => pruned.push([...kids]),
  });
  const signer = createSigner({ keyring, issuer: ISSUER, tokenTtlSeconds: POLICY.tokenTtlSeconds, clock: time.clock });
  return { db, keyStore, keyring, signer, time, reports, pruned };
}

const kidsOf = (jwks: { keys: { kid: string }[] }) => jwks.keys.map((jwk) => jwk.kid);

describe('createKeyring', () => {
  it('maintains the store on first use, and publishes the active key and its successor, not the expired one', async () => {
    const { keyring, reports } = await fixture();
    const snapshot = await keyring.current();

    expect(reports.map(({ created }) => created.map(({ kid }) => kid))).toEqual([[1, 2, 3]]);
    expect(snapshot.signingKey('RS256').kid).toBe('1');
    expect(snapshot.expiredKey('RS256').kid).toBe('3');
    expect(kidsOf(snapshot.jwks)).toEqual(['1', '2']);
    expect(snapshot.findPublishedKey('2')?.jwk).toBe(snapshot.jwks.keys[1]);
    expect(snapshot.findPublishedKey('3')).toBeUndefined();
    expect(JSON.parse(snapshot.jwksDocument.json)).toEqual(snapshot.jwks);
    expect(snapshot.jwksDocument.etag).toMatch(/^"[\w-]{43}"$/);
    for (const jwk of snapshot.jwks.keys) for (const member of PRIVATE_JWK_MEMBERS) expect(jwk).not.toHaveProperty(member);
  });

  it('serves the same snapshot, without touching the store, until a key changes state', async () => {
    const { keyring, time, db } = await fixture();
    const first = await keyring.current();
    await db.destroy();
    time.advance(POLICY.keyTtlSeconds - 1);
    expect(await keyring.current()).toBe(first);
  });

  it('switches to the successor the second the active key retires, from memory, with the same published set', async () => {
    const { keyring, time, reports, db } = await fixture();
    const first = await keyring.current();
    time.advance(POLICY.keyTtlSeconds);
    await db.destroy();

    const second = await keyring.current();
    expect(second.signingKey('RS256').kid).toBe('2');
    expect(second.jwks).toBe(first.jwks);
    expect(second.jwksDocument.etag).toBe(first.jwksDocument.etag);
    expect(reports).toHaveLength(1);
  });

  it('publishes a new successor at the next scheduler step, and drops a key once its tokens have expired', async () => {
    const { keyring, time, reports } = await fixture();
    await keyring.current();
    time.advance(POLICY.keyTtlSeconds);
    await keyring.sync();
    expect(reports.at(-1)?.created).toEqual([{ kid: 4, alg: 'RS256', role: 'successor' }]);
    expect(kidsOf((await keyring.current()).jwks)).toEqual(['1', '2', '4']);

    time.advance(POLICY.tokenTtlSeconds);
    const snapshot = await keyring.current();
    expect(kidsOf(snapshot.jwks)).toEqual(['2', '4']);
    expect(snapshot.expiredKey('RS256').kid).toBe('1');
  });

  it('rebuilds once when many requests arrive together', async () => {
    const { keyring, reports } = await fixture();
    const snapshots = await Promise.all(Array.from({ length: 20 }, () => keyring.current()));
    expect(new Set(snapshots).size).toBe(1);
    expect(reports).toHaveLength(1);
  });

  it('picks up a revocation made by another process at the next step, and promotes the successor', async () => {
    const path = await newTestDatabase();
    const { keyring, time } = await fixture({ path });
    await keyring.current();
    const other = createKeyStore(await openTestDatabase(path));

    time.advance(600);
    expect(await other.revoke(1, time.now())).toBe('revoked');
    expect((await keyring.current()).signingKey('RS256').kid).toBe('1');
    await keyring.sync();
    const snapshot = await keyring.current();
    expect(snapshot.signingKey('RS256').kid).toBe('2');
    expect(kidsOf(snapshot.jwks)).toEqual(['2', '4']);
  });

  it('loads again at the next step when a load fails, rather than taking the change as seen', async () => {
    const path = await newTestDatabase();
    const db = await openTestDatabase(path);
    const store = createKeyStore(db);
    let failNextLoad = false;
    const flakyStore = {
      ...store,
      loadServingKeys: (now: number, algorithms: readonly SigningAlgorithm[]) => {
        if (!failNextLoad) return store.loadServingKeys(now, algorithms);
        failNextLoad = false;
        return Promise.reject(new Error('database is busy'));
      },
    };
    const time = manualClock(1_800_000_000);
    const keyring = createKeyring({ keyStore: flakyStore, algorithms: ['RS256'], policy: POLICY, expiredKeyRetentionSeconds: 7200, clock: time.clock });
    await keyring.current();

    expect(await createKeyStore(await openTestDatabase(path)).revoke(1, time.now())).toBe('revoked');
    failNextLoad = true;
    await expect(keyring.sync()).rejects.toThrow('database is busy');
    await keyring.sync();
    expect((await keyring.current()).signingKey('RS256').kid).toBe('2');
  });

  it('prunes old keys from the scheduler, at most once a minute', async () => {
    const { keyring, keyStore, time, pruned, db } = await fixture();
    const pem = await generatePrivateKeyPem('RS256');
    await insertCourseKey(db, pem, time.now() - 20_000);
    await insertCourseKey(db, pem, time.now() - 10_000);
    await keyring.current();
    await keyring.sync();
    expect(pruned).toEqual([[1]]);

    // Revoked long ago (as far as retention goes): prunable, but not before the next minute.
    expect(await keyStore.revoke(4, time.now() - 8000)).toBe('revoked');
    await keyring.reload();
    await keyring.sync();
    expect(pruned).toEqual([[1]]);
    time.advance(60);
    await keyring.sync();
    expect(pruned).toEqual([[1], [4]]);
  });
});

describe('createSigner', () => {
  it.each([['RS256'], ['PS256'], ['ES256'], ['ES384'], ['EdDSA']] as const)('issues a %s JWT that verifies against the published keys', async (algorithm) => {
    const { signer, keyring, time } = await fixture({ algorithms: [algorithm] });
    const token = await signer.issueToken({ subject: 'alice' });
    const { header, claims } = decodeToken(token);

    expect(header).toEqual({ alg: algorithm, kid: '1', typ: 'JWT' });
    expect(claims).toEqual({ iss: ISSUER, sub: 'alice', iat: time.now(), exp: time.now() + POLICY.tokenTtlSeconds });
    const jwks = createLocalJWKSet((await keyring.current()).jwks);
    const { payload } = await jwtVerify(token, jwks, { algorithms: [algorithm], currentDate: new Date(time.now() * 1000) });
    expect(payload.sub).toBe('alice');
  });

  it('signs with the algorithm asked for, the first configured by default', async () => {
    const { signer } = await fixture({ algorithms: ['ES256', 'RS256'] });
    expect(decodeToken(await signer.issueToken({ subject: 'a' })).header.alg).toBe('ES256');
    expect(decodeToken(await signer.issueToken({ subject: 'a', algorithm: 'RS256' })).header.alg).toBe('RS256');
  });

  it('gives every token its full lifetime, however close its key is to retiring', async () => {
    const { signer, keyring, time } = await fixture();
    await keyring.current();
    time.advance(POLICY.keyTtlSeconds - 1);
    const { header, claims } = decodeToken(await signer.issueToken({ subject: 'bob' }));
    expect(header.kid).toBe('1');
    expect(claims.exp).toBe(time.now() + POLICY.tokenTtlSeconds);
    expect((await keyring.current()).signingKey('RS256').exp).toBeGreaterThanOrEqual(claims.exp ?? Infinity);
  });

  it('adds the audience when there is one', async () => {
    const { keyring, time } = await fixture();
    const signer = createSigner({ keyring, issuer: ISSUER, audience: 'https://api.example', tokenTtlSeconds: 60, clock: time.clock });
    expect(decodeToken(await signer.issueToken({ subject: 'a' })).claims.aud).toBe('https://api.example');
  });

  it('signs an expired token with the expired key, which is not published', async () => {
    const { signer, keyring, time } = await fixture();
    const token = await signer.issueToken({ subject: 'carol', expired: true });
    const snapshot = await keyring.current();
    const { header, claims } = decodeToken(token);

    expect(header.kid).toBe(snapshot.expiredKey('RS256').kid);
    expect(claims.exp).toBe(snapshot.expiredKey('RS256').exp);
    expect(claims.exp).toBeLessThan(time.now());
    await expect(jwtVerify(token, createLocalJWKSet(snapshot.jwks))).rejects.toThrow(errors.JWKSNoMatchingKey);
  });
});
