/** One thread of the signing limit: a plain loop of node:crypto's sign with the server's own key, for a fixed time. */
import { constants, createPrivateKey, sign, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { SigningAlgorithm } from '../src/keys/algorithms.js';

interface SignWork {
  algorithm: SigningAlgorithm;
  pem: string;
  seconds: number;
}

const { algorithm, pem, seconds } = workerData as SignWork;
const key = createPrivateKey(pem);
// A JWS signing input of the size the server signs.
const signingInput = Buffer.from(`${'e'.repeat(60)}.${'p'.repeat(150)}`);

const HOW_TO_SIGN: Record<SigningAlgorithm, [string | null, KeyObject | SignKeyObjectInput]> = {
  RS256: ['sha256', key],
  PS256: ['sha256', { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }],
  ES256: ['sha256', { key, dsaEncoding: 'ieee-p1363' }],
  ES384: ['sha384', { key, dsaEncoding: 'ieee-p1363' }],
  EdDSA: [null, key],
};
const [digest, signingKey] = HOW_TO_SIGN[algorithm];
const end = performance.now() + seconds * 1000;
let signatures = 0;
while (performance.now() < end) {
  sign(digest, signingInput, signingKey);
  signatures += 1;
}
parentPort?.postMessage(signatures / seconds);
