/**
 * The lifecycle's promise, checked over several rotations in compressed time: every token the
 * server issues verifies at once against the JWKS it serves at that moment and against every
 * JWKS a client may still hold from cache (fetched up to JWKS_MAX_AGE earlier); no token is
 * signed by a key that is unpublished, revoked, or was published less than JWKS_MAX_AGE before.
 */
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { describe, expect, it } from 'vitest';
import type { SigningAlgorithm } from '../src/keys/algorithms.js';
import { decodeToken, manualClock, readyApp } from './helpers.js';

const KEY_TTL = 60;
const TOKEN_TTL = 20;
const JWKS_MAX_AGE = 10;
const ALGORITHMS: [SigningAlgorithm, ...SigningAlgorithm[]] = ['RS256', 'ES256'];
const SECONDS = 330;
const TOKENS_PER_SECOND = 8;

interface FetchedJwks {
  at: number;
  kids: Set<string>;
  keySet: ReturnType<typeof createLocalJWKSet>;
}

describe('rotation under load, in compressed time', () => {
  it('never issues a token that a client holding the live or a cached JWKS cannot verify', async () => {
    const time = manualClock();
    const start = time.now();
    const app = await readyApp({
      keyTtlSeconds: KEY_TTL,
      tokenTtlSeconds: TOKEN_TTL,
      jwksMaxAgeSeconds: JWKS_MAX_AGE,
      algorithms: ALGORITHMS,
      rateLimit: false,
      clock: time.clock,
      // The test runs the scheduler's steps itself, on its own clock.
      keySyncIntervalMs: 3_600_000,
    });
    const fetched: FetchedJwks[] = [];
    const firstPublished = new Map<string, number>();
    const firstSigned = new Map<string, number>();
    const revoked = new Set<string>();
    const signersSeen = new Set<string>();
    let verifications = 0;

    for (let second = 0; second < SECONDS; second += 1) {
      const now = time.now();
      // The scheduler misses a step now and then, and is down once from just before a successor
      // starts signing until its own successor can no longer be published a full JWKS_MAX_AGE ahead.
      const schedulerDown = second % 9 === 4 || (second >= 118 && second < 175);
      if (!schedulerDown) await app.keyring.sync();
      if (second === 100) {
        await app.keyStore.rotate(now, 'ES256', { keyTtlSeconds: KEY_TTL, tokenTtlSeconds: TOKEN_TTL, leadSeconds: JWKS_MAX_AGE });
        await app.keyring.reload();
      }
      if (second === 250) {
        const active = (await app.keyring.current()).signingKey('RS256').kid;
        expect(await app.keyStore.revoke(Number(active), now)).toBe('revoked');
        revoked.add(active);
        await app.keyring.reload();
      }

      const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
      const kids = new Set(jwks.keys.map((jwk) => jwk.kid ?? ''));
      for (const kid of kids) if (!firstPublished.has(kid)) firstPublished.set(kid, now);
      fetched.push({ at: now, kids, keySet: createLocalJWKSet(jwks) });
      const clientCaches = fetched.filter(({ at }) => at >= now - JWKS_MAX_AGE);

      const responses = await Promise.all(
        Array.from({ length: TOKENS_PER_SECOND }, (_, index) => app.inject({ method: 'POST', url: `/auth?alg=${ALGORITHMS[index % ALGORITHMS.length] ?? 'RS256'}` })),
      );
      for (const response of responses) {
        expect(response.statusCode).toBe(200);
        const { token } = response.json<{ token: string }>();
        const { header, claims } = decodeToken(token);
        const kid = header.kid ?? '';
        expect(kids.has(kid), `key ${kid} signed at +${String(second)} s without being published`).toBe(true);
        expect(revoked.has(kid), `revoked key ${kid} signed at +${String(second)} s`).toBe(false);
        expect(claims.exp).toBe(now + TOKEN_TTL);
        if (!firstSigned.has(kid)) firstSigned.set(kid, now);
        signersSeen.add(kid);
        for (const cache of clientCaches) {
          await jwtVerify(token, cache.keySet, { currentDate: new Date(now * 1000), algorithms: ALGORITHMS }).catch((error: unknown) => {
            throw new Error(`token of key ${kid} at +${String(second)} s failed against the JWKS fetched at +${String(cache.at - start)} s`, { cause: error });
          });
          verifications += 1;
        }
      }
      time.advance(1);
    }

    // Every key that signed, except the first of each algorithm, was published ahead of its first token.
    const initialSigners = new Set([...firstSigned].filter(([, at]) => at === start).map(([kid]) => kid));
    expect(initialSigners.size).toBe(ALGORITHMS.length);
    for (const [kid, signedAt] of firstSigned) {
      if (initialSigners.has(kid)) continue;
      expect(signedAt - (firstPublished.get(kid) ?? signedAt), `key ${kid}`).toBeGreaterThanOrEqual(JWKS_MAX_AGE);
    }
    // Several rotations per algorithm really happened, and the checks really ran.
    expect(signersSeen.size).toBeGreaterThanOrEqual(2 * (SECONDS / KEY_TTL));
    expect(verifications).toBeGreaterThan(SECONDS * TOKENS_PER_SECOND * JWKS_MAX_AGE);
  }, 60_000);
});
