import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { CompactSign, compactVerify, importJWK } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { SIGNING_ALGORITHMS } from '../src/keys/algorithms.js';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { importSigningKey, toPublicJwk, UnusableKeyError } from '../src/keys/public-jwk.js';
import { PRIVATE_JWK_MEMBERS } from './helpers.js';

// This is the one suite that must generate every key itself (tests/pregenerated-rsa-keys.ts).
vi.unmock('../src/keys/key-generation.js');

describe('generatePrivateKeyPem', () => {
  it('makes a fresh RSA-2048 key in PKCS#1 PEM each time, for RS256 and PS256', async () => {
    const [first, second, pss] = await Promise.all([generatePrivateKeyPem('RS256'), generatePrivateKeyPem('RS256'), generatePrivateKeyPem('PS256')]);
    expect(first).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(pss).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(first).not.toBe(second);
    const key = createPrivateKey(first);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
  });

  it.each([
    ['ES256', 'ec', { namedCurve: 'prime256v1' }],
    ['ES384', 'ec', { namedCurve: 'secp384r1' }],
    ['EdDSA', 'ed25519', {}],
  ] as const)('makes a %s key in PKCS#8 PEM', async (algorithm, keyType, details) => {
    const pem = await generatePrivateKeyPem(algorithm);
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(pem);
    expect(key.asymmetricKeyType).toBe(keyType);
    expect(key.asymmetricKeyDetails).toEqual(details);
  });

  it('leaves the event loop turning while it works', async () => {
    let turns = 0;
    let turning = true;
    const turn = (): void => {
      turns += 1;
      if (turning) setImmediate(turn);
    };
    setImmediate(turn);
    await generatePrivateKeyPem('RS256');
    turning = false;
    // A generator that blocked the loop would let no turn happen before it resolved.
    expect(turns).toBeGreaterThan(1);
  });
});

describe('toPublicJwk', () => {
  const expectedMembers = { RS256: ['n', 'e'], PS256: ['n', 'e'], ES256: ['crv', 'x', 'y'], ES384: ['crv', 'x', 'y'], EdDSA: ['crv', 'x'] };

  it.each(SIGNING_ALGORITHMS)('publishes only the public members of a %s key, which verify its signatures', async (algorithm) => {
    const privateKey = importSigningKey('7', algorithm, await generatePrivateKeyPem(algorithm));
    const jwk = await toPublicJwk('7', algorithm, privateKey);

    expect(Object.keys(jwk)).toEqual(['kty', 'kid', 'use', 'alg', ...expectedMembers[algorithm]]);
    expect(jwk).toMatchObject({ kid: '7', use: 'sig', alg: algorithm });
    for (const member of PRIVATE_JWK_MEMBERS) expect(jwk).not.toHaveProperty(member);
    const signature = await new CompactSign(new TextEncoder().encode('payload')).setProtectedHeader({ alg: algorithm }).sign(privateKey);
    await expect(compactVerify(signature, await importJWK(jwk, algorithm))).resolves.toBeDefined();
  });
});

describe('importSigningKey', () => {
  it('refuses an unreadable key without repeating its contents', () => {
    const garbage = '-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ1dC1icm9rZW4=\n-----END RSA PRIVATE KEY-----\n';
    expect(() => importSigningKey('1', 'RS256', garbage)).toThrow(UnusableKeyError);
    expect(() => importSigningKey('1', 'RS256', garbage)).toThrow(/^key 1 in the store is not a readable private key$/);
  });

  it('refuses a key that does not fit the algorithm it is stored for', async () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    expect(() => importSigningKey('3', 'RS256', p256)).toThrow(/^key 3 in the store is not a RS256 key$/);
    expect(() => importSigningKey('3', 'ES384', p256)).toThrow(/^key 3 in the store is not a ES384 key$/);
    const rsa = await generatePrivateKeyPem('RS256');
    expect(() => importSigningKey('3', 'EdDSA', rsa)).toThrow(UnusableKeyError);
    expect(importSigningKey('3', 'ES256', p256).asymmetricKeyType).toBe('ec');
  });

  it('refuses to publish a public key it has no JWK form for', async () => {
    const x448 = generateKeyPairSync('x448').privateKey;
    await expect(toPublicJwk('9', 'EdDSA', x448)).rejects.toThrow(/^key 9 has no public JWK form this server publishes$/);
    expect(createPublicKey(x448).asymmetricKeyType).toBe('x448');
  });
});
