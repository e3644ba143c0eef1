/**
 * How to sign on every core, measured rather than assumed: RS256 JWTs with the same key, 50 in
 * flight, through jose (WebCrypto: each signature a job on libuv's thread pool, what the server
 * does), through node:crypto's callback `sign` (also the thread pool), and through the
 * synchronous `sign` on the main thread. Reports signatures per second and how busy the main
 * thread was: the main thread is what HTTP handling needs.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { SignJWT } from 'jose';

export interface SigningStrategyResult {
  strategy: string;
  signaturesPerSecond: number;
  /** Fraction of the wall time the main thread spent running JavaScript or native code for it. */
  mainThreadBusy: number;
}

const IN_FLIGHT = 50;

function signingInput(): Buffer {
  return Buffer.from(`${'e'.repeat(60)}.${'p'.repeat(150)}`);
}

async function measure(strategy: string, seconds: number, signOnce: () => Promise<unknown>): Promise<SigningStrategyResult> {
  const end = performance.now() + seconds * 1000;
  const startedAt = performance.now();
  const startUtilization = performance.eventLoopUtilization();
  let signatures = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        await signOnce();
        signatures += 1;
      }
    }),
  );
  const elapsed = (performance.now() - startedAt) / 1000;
  const { utilization } = performance.eventLoopUtilization(startUtilization);
  return { strategy, signaturesPerSecond: Math.round(signatures / elapsed), mainThreadBusy: Number(utilization.toFixed(2)) };
}

export async function measureSigningStrategies(seconds: number): Promise<SigningStrategyResult[]> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key: KeyObject = privateKey;
  const input = signingInput();
  return [
    await measure('jose SignJWT (WebCrypto, thread pool)', seconds, () =>
      new SignJWT({ sub: 'demo-user' }).setProtectedHeader({ alg: 'RS256', kid: '1', typ: 'JWT' }).setIssuedAt().setExpirationTime('15m').sign(key),
    ),
    await measure('node:crypto sign with a callback (thread pool)', seconds, () =>
      new Promise((resolve, reject) => {
        sign('sha256', input, key, (error, signature) => {
          if (error === null) resolve(signature);
          else reject(error);
        });
      }),
    ),
    await measure('node:crypto sign, synchronous (main thread)', seconds, () => Promise.resolve(sign('sha256', input, key))),
  ];
}
