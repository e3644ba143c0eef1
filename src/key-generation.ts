/** Generates the RSA key pairs the server signs with. */
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairOnThreadpool = promisify(generateKeyPair);

const RSA_MODULUS_BITS = 2048;

/**
 * A fresh RSA-2048 private key as PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), the form the
 * `keys` table holds. Generation runs on libuv's threadpool, so the event loop keeps serving.
 */
export async function generateRsaPrivateKeyPem(): Promise<string> {
  const { privateKey } = await generateKeyPairOnThreadpool('rsa', {
    modulusLength: RSA_MODULUS_BITS,
    publicExponent: 0x10001,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return privateKey;
}
