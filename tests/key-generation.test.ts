import { createPrivateKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateRsaPrivateKeyPem } from '../src/key-generation.js';

describe('generateRsaPrivateKeyPem', () => {
  it('makes a fresh RSA-2048 key in PKCS#1 PEM each time', async () => {
    const [first, second] = await Promise.all([generateRsaPrivateKeyPem(), generateRsaPrivateKeyPem()]);
    expect(first).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(first).not.toBe(second);
    const key = createPrivateKey(first);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
  });

  it('leaves the event loop turning while it works', async () => {
    let turns = 0;
    let turning = true;
    const turn = (): void => {
      turns += 1;
      if (turning) setImmediate(turn);
    };
    setImmediate(turn);
    await generateRsaPrivateKeyPem();
    turning = false;
    // A generator that blocked the loop would let no turn happen before it resolved.
    expect(turns).toBeGreaterThan(1);
  });
});
