/** Issues JWTs signed with the keyring's keys, through jose. */
import { SignJWT } from 'jose';
import type { Clock } from './clock.js';
import { SIGNING_ALGORITHM, type Keyring } from './keyring.js';

export interface IssueTokenOptions {
  /** The `sub` claim. */
  subject: string;
  /** Sign with the most recently expired key and an `exp` in the past, for testing verifiers. */
  expired?: boolean;
}

export interface Signer {
  /** A compact JWS with `kid` and `typ: JWT` in its header and `sub`, `iat`, `exp` claims. */
  issueToken(options: IssueTokenOptions): Promise<string>;
}

export interface SignerOptions {
  keyring: Keyring;
  tokenTtlSeconds: number;
  clock: Clock;
}

export function createSigner({ keyring, tokenTtlSeconds, clock }: SignerOptions): Signer {
  return {
    async issueToken({ subject, expired = false }) {
      const { signingKey, expiredKey } = await keyring.current();
      const now = clock();
      const key = expired ? expiredKey : signingKey;
      // A token never outlives the key that signed it: once the key leaves the JWKS, nothing
      // could verify the token anyway.
      const exp = expired ? key.exp : Math.min(now + tokenTtlSeconds, key.exp);
      return new SignJWT()
        .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: key.kid, typ: 'JWT' })
        .setSubject(subject)
        .setIssuedAt(now)
        .setExpirationTime(exp)
        .sign(key.privateKey);
    },
  };
}
