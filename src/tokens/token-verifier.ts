/** Verifies tokens this server issued: signature by a published key, `exp`, issuer and audience. */
import { createLocalJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { SIGNING_ALGORITHMS } from '../keys/algorithms.js';
import type { Clock } from '../common/clock.js';
import type { Jwks, Keyring } from '../keys/keyring.js';

/** The token is missing, malformed, forged, expired, or signed by a key we do not publish. */
export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
  readonly code = 'ERR_JWKS_INVALID_TOKEN';
  readonly statusCode = 401;
}

export interface VerifyOptions {
  /**
   * Accept any `aud`: introspection and revocation answer for every token we issued, access
   * tokens for other audiences among them. By default, the configured audience is required.
   */
  anyAudience?: boolean;
}

export interface TokenVerifier {
  /** The verified claims; throws {@link InvalidTokenError} for any token we would not have issued. */
  verify(token: string, options?: VerifyOptions): Promise<JWTPayload>;
}

export interface TokenVerifierOptions {
  keyring: Keyring;
  issuer: string;
  audience?: string | undefined;
  clock: Clock;
}

export function createTokenVerifier({ keyring, issuer, audience, clock }: TokenVerifierOptions): TokenVerifier {
  // One key set per published set: built when the published keys change, not per request.
  const keySets = new WeakMap<Jwks, ReturnType<typeof createLocalJWKSet>>();
  return {
    async verify(token, { anyAudience = false } = {}) {
      const { jwks } = await keyring.current();
      let keySet = keySets.get(jwks);
      if (keySet === undefined) {
        keySet = createLocalJWKSet(jwks);
        keySets.set(jwks, keySet);
      }
      try {
        // Every JWK names its algorithm, and jose only uses a key for the algorithm it names.
        const { payload } = await jwtVerify(token, keySet, {
          algorithms: [...SIGNING_ALGORITHMS],
          issuer,
          ...(audience === undefined || anyAudience ? {} : { audience }),
          currentDate: new Date(clock() * 1000),
        });
        return payload;
      } catch (error) {
        if (error instanceof errors.JOSEError) throw new InvalidTokenError('The token is invalid or expired', { cause: error });
        throw error;
      }
    },
  };
}
