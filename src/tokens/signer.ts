/** Issues JWTs signed with the keyring's keys, through jose: the tokens of `/auth` and OAuth access tokens. */
import { randomUUID } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
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

/**
 * Claims of an access token (RFC 7519 §4.1, RFC 9068 §2.2, RFC 8176) that only the server
 * sets: an extra claim by one of these names could make a token say what was never granted.
 */
export const REGISTERED_CLAIMS: readonly string[] = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'amr', 'auth_time', 'acr', 'cnf', 'act'];

function withoutRegisteredClaims(claims: Readonly<Record<string, unknown>>): JWTPayload {
  return Object.fromEntries(Object.entries(claims).filter(([name]) => !REGISTERED_CLAIMS.includes(name)));
}

export interface IssueAccessTokenOptions {
  clientId: string;
  /** The `sub` claim: the client itself, or the user it acts for. */
  subject: string;
  /** The `aud` claim; the signer's audience, else its issuer, when not given. */
  audience?: string | undefined;
  /** The granted scopes; no `scope` claim when there are none. */
  scopes: readonly string[];
  /** Claims added to the registered ones; any that names a registered claim is left out. */
  extraClaims?: Readonly<Record<string, unknown>> | undefined;
  /** The subject proved a password (the password grant): `amr: ["pwd"]`, as `/auth` tokens say it. */
  passwordVerified?: boolean;
}

export interface AccessToken {
  token: string;
  /** Seconds from now until `exp`. */
  expiresIn: number;
}

export interface Signer {
  /** A compact JWS with `alg`, `kid` and `typ: JWT` in its header and `iss`, `sub`, `iat`, `exp` (and `aud`) claims. */
  issueToken(options: IssueTokenOptions): Promise<string>;
  /**
   * An access token in the JWT profile of RFC 9068: `typ: at+jwt` in the header; `iss`, `sub`,
   * `aud`, `client_id`, `scope`, `iat`, `exp` and a unique `jti` (what revocation names).
   */
  issueAccessToken(options: IssueAccessTokenOptions): Promise<AccessToken>;
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

    async issueAccessToken({ clientId, subject, audience: clientAudience, scopes, extraClaims = {}, passwordVerified = false }) {
      const snapshot = await keyring.current();
      const now = clock();
      const key = snapshot.signingKey(keyring.algorithms[0]);
      const claims: JWTPayload = { ...withoutRegisteredClaims(extraClaims), client_id: clientId };
      if (scopes.length > 0) claims.scope = scopes.join(' ');
      if (passwordVerified) claims.amr = ['pwd'];
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setSubject(subject)
        .setAudience(clientAudience ?? audience ?? issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + tokenTtlSeconds)
        .setJti(randomUUID())
        .sign(key.privateKey);
      return { token, expiresIn: tokenTtlSeconds };
    },
  };
}
