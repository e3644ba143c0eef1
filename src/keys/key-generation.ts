/** Generates the private keys the server signs with. */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { KEY_KINDS, type SigningAlgorithm } from './algorithms.js';

const generateKeyPairOnThreadpool = promisify(generateKeyPair);

const RSA_MODULUS_BITS = 2048;

async function generatePrivateKey(algorithm: SigningAlgorithm): Promise<KeyObject> {
  const kind = KEY_KINDS[algorithm];
  switch (kind.keyType) {
    case 'rsa':
      return (await generateKeyPairOnThreadpool('rsa', { modulusLength: RSA_MODULUS_BITS, publicExponent: 0x10001 })).privateKey;
    case 'ec':
      return (await generateKeyPairOnThreadpool('ec', { namedCurve: kind.namedCurve })).privateKey;
    case 'ed25519':
      return (await generateKeyPairOnThreadpool('ed25519', {})).privateKey;
  }
}

/**
 * A fresh private key for `algorithm`, as PEM. RSA keys are PKCS#1 (`-----BEGIN RSA PRIVATE
 * KEY-----`), the form the course's `keys` table holds; the others are PKCS#8. Generation runs
 * on libuv's threadpool, so the event loop keeps serving.
 */
export async function generatePrivateKeyPem(algorithm: SigningAlgorithm): Promise<string> {
  const privateKey = await generatePrivateKey(algorithm);
  const type = KEY_KINDS[algorithm].keyType === 'rsa' ? 'pkcs1' : 'pkcs8';
  return privateKey.export({ type, format: 'pem' }).toString();
}
