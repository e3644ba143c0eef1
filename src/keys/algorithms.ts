/** The JWS algorithms the server can sign with, and the kind of key each one needs. */

export const SIGNING_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** The algorithms a server signs with; never empty, and the first is the default. */
export type AlgorithmList = readonly [SigningAlgorithm, ...SigningAlgorithm[]];

export const DEFAULT_ALGORITHMS: AlgorithmList = ['RS256'];

/** What a private key must be to sign with an algorithm: Node's key type, and for EC keys the curve (OpenSSL's name). */
export type KeyKind = { keyType: 'rsa' } | { keyType: 'ec'; namedCurve: 'prime256v1' | 'secp384r1' } | { keyType: 'ed25519' };

export const KEY_KINDS: Readonly<Record<SigningAlgorithm, KeyKind>> = {
  RS256: { keyType: 'rsa' },
  // RSASSA-PSS signs with an ordinary RSA key (RFC 7518 §3.5); only the padding differs.
  PS256: { keyType: 'rsa' },
  ES256: { keyType: 'ec', namedCurve: 'prime256v1' },
  ES384: { keyType: 'ec', namedCurve: 'secp384r1' },
  EdDSA: { keyType: 'ed25519' },
};

export function isSigningAlgorithm(name: string): name is SigningAlgorithm {
  return (SIGNING_ALGORITHMS as readonly string[]).includes(name);
}
