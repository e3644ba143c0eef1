/**
 * RSA-2048 keys take about 0.2 s of CPU each to generate, and nearly every test starts a server
 * that makes three: in the test processes, RSA keys come from a pool made once per run by the
 * global setup instead (the same function made them). Each process hands them out in turn, so
 * the keys of one server, up to the pool's size, are all different. EC and Ed25519 keys, which
 * cost microseconds, are generated as usual; tests/key-generation.test.ts tests the real thing,
 * and the server processes of the end-to-end tests generate their own.
 */
import { inject, vi } from 'vitest';
import { KEY_KINDS, type SigningAlgorithm } from '../src/keys/algorithms.js';

vi.mock('../src/keys/key-generation.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../src/keys/key-generation.js')>();
  const pool = inject('rsaKeyPool');
  let next = Math.floor(Math.random() * pool.length);
  return {
    ...actual,
    generatePrivateKeyPem: (algorithm: SigningAlgorithm): Promise<string> => {
      if (KEY_KINDS[algorithm].keyType !== 'rsa') return actual.generatePrivateKeyPem(algorithm);
      const pem = pool[next % pool.length];
      next += 1;
      return pem === undefined ? actual.generatePrivateKeyPem(algorithm) : Promise.resolve(pem);
    },
  };
});
