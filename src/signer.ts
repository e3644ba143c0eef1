/** Issues JWTs signed with the keyring's keys, through jose. */
import { SignJWT } from 'jose';
import type { Clock } from './clock.js';
import { SIGNING_ALGORITHM, type Keyring } from './keyring.js';

export interface IssueTokenOptions {
  /** The `sub` claim. */
  subject: string;
  /** Sign with the most recently expired key and an `exp` in the past, for testing verifiers. */
  expired?: boolean;
  /**
   * The subject proved a password: the token says so with `amr: ["pwd"]` (RFC 8176), which
   * routes that serve a user's own data require.
   */
  passwordVerified?: boolean;
}

export interface Signer {
  /** A compact JWS with `kid` and `typ: JWT` in its header and `iss`, `sub`, `iat`, `exp` claims. */
  issueToken(options: IssueTokenOptions): Promise<string>;
}

export interface SignerOptions {
  keyring: Keyring;
  /** The `iss` claim. */
  issuer: string;
  tokenTtlSeconds: number;
  clock: Clock;
}

export function createSigner({ keyring, issuer, tokenTtlSeconds, clock }: SignerOptions): Signer {
  return {
    async issueToken({ subject, expired = false, passwordVerified = false }) {
      const { signingKey, expiredKey } = await keyring.current();
      const now = clock();
      const key = expired ? expiredKey : signingKey;
      // A token never outlives the key that signed it: once the key leaves the JWKS, nothing
      // could verify the token anyway.
      const exp = expired ? key.exp : Math.min(now + tokenTtlSeconds, key.exp);
      return new SignJWT(passwordVerified ? { amr: ['pwd'] } : {})
        .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: key.kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setSubject(subject)
        .setIssuedAt(now)
        .setExpirationTime(exp)
        .sign(key.privateKey);
    },
  };
}
