/** Issues JWTs signed with the keyring's keys, through jose. */
import { SignJWT } from 'jose';
import type { SigningAlgorithm } from '../keys/algorithms.js';
import type { Clock } from '../common/clock.js';
import type { Keyring } from '../keys/keyring.js';

export interface IssueTokenOptions {
  /** The `sub` claim. */
  subject: string;
  /** One of the keyring's algorithms; the first of them when not given. */
  algorithm?: SigningAlgorithm | undefined;
  /** Sign with the most recently expired key and an `exp` in the past, for testing verifiers. */
  expired?: boolean;
  /**
   * The subject proved a password: the token says so with `amr: ["pwd"]` (RFC 8176), which
   * routes that serve a user's own data require.
   */
  passwordVerified?: boolean;
}

export interface Signer {
  /** A compact JWS with `alg`, `kid` and `typ: JWT` in its header and `iss`, `sub`, `iat`, `exp` (and `aud`) claims. */
  issueToken(options: IssueTokenOptions): Promise<string>;
}

export interface SignerOptions {
  keyring: Keyring;
  /** The `iss` claim. */
  issuer: string;
  /** The `aud` claim, when there is one. */
  audience?: string | undefined;
  tokenTtlSeconds: number;
  clock: Clock;
}

export function createSigner({ keyring, issuer, audience, tokenTtlSeconds, clock }: SignerOptions): Signer {
  return {
    async issueToken({ subject, algorithm = keyring.algorithms[0], expired = false, passwordVerified = false }) {
      const snapshot = await keyring.current();
      const now = clock();
      const key = expired ? snapshot.expiredKey(algorithm) : snapshot.signingKey(algorithm);
      // An active key stays published a whole token lifetime after it stops signing, so a
      // token's full lifetime always fits inside its key's.
      const exp = expired ? key.exp : now + tokenTtlSeconds;
      const token = new SignJWT(passwordVerified ? { amr: ['pwd'] } : {})
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setSubject(subject)
        .setIssuedAt(now)
        .setExpirationTime(exp);
      if (audience !== undefined) token.setAudience(audience);
      return token.sign(key.privateKey);
    },
  };
}
