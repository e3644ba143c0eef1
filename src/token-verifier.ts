/** Verifies tokens this server issued: signature by a published key, `exp`, issuer. */
import { createLocalJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Clock } from './clock.js';
import { SIGNING_ALGORITHM, type Jwks, type Keyring } from './keyring.js';

/** The token is missing, malformed, forged, expired, or signed by a key we do not publish. */
export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
  readonly code = 'ERR_JWKS_INVALID_TOKEN';
  readonly statusCode = 401;
}

export interface TokenVerifier {
  /** The verified claims; throws {@link InvalidTokenError} for any token we would not have issued. */
  verify(token: string): Promise<JWTPayload>;
}

export function createTokenVerifier({ keyring, issuer, clock }: { keyring: Keyring; issuer: string; clock: Clock }): TokenVerifier {
  // One key set per keyring snapshot: built when the published keys change, not per request.
  const keySets = new WeakMap<Jwks, ReturnType<typeof createLocalJWKSet>>();
  return {
    async verify(token) {
      const { jwks } = await keyring.current();
      let keySet = keySets.get(jwks);
      if (keySet === undefined) {
        keySet = createLocalJWKSet(jwks);
        keySets.set(jwks, keySet);
      }
      try {
        const { payload } = await jwtVerify(token, keySet, {
          algorithms: [SIGNING_ALGORITHM],
          issuer,
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
