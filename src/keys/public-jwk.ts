/** Turns stored private keys into signing keys and their public JWKs (RFC 7517, RFC 7518 §6, RFC 8037). */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { exportJWK } from 'jose';
import { KEY_KINDS, type SigningAlgorithm } from './algorithms.js';

interface PublicJwkMembers {
  kid: string;
  use: 'sig';
  /** Verifiers such as golang-jwt's keyfunc refuse a token whose `alg` differs from its key's. */
  alg: SigningAlgorithm;
}

export interface RsaPublicJwk extends PublicJwkMembers {
  kty: 'RSA';
  n: string;
  e: string;
}

export interface EcPublicJwk extends PublicJwkMembers {
  kty: 'EC';
  crv: 'P-256' | 'P-384';
  x: string;
  y: string;
}

export interface OkpPublicJwk extends PublicJwkMembers {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
}

/** A public key as published in the JWKS; never holds a private member. */
export type PublicJwk = RsaPublicJwk | EcPublicJwk | OkpPublicJwk;

/** A row of the store cannot be used as a signing key for its algorithm. */
export class UnusableKeyError extends Error {
  override readonly name = 'UnusableKeyError';
  readonly code = 'ERR_JWKS_UNUSABLE_KEY';
}

function fitsAlgorithm(key: KeyObject, algorithm: SigningAlgorithm): boolean {
  const kind = KEY_KINDS[algorithm];
  if (key.asymmetricKeyType !== kind.keyType) return false;
  return kind.keyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve === kind.namedCurve;
}

/** Parses a stored PEM and checks that it can sign with `algorithm`; the error never quotes the key. */
export function importSigningKey(kid: string, algorithm: SigningAlgorithm, pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    // The cause says what the parser disliked; the message deliberately holds none of the key.
    throw new UnusableKeyError(`key ${kid} in the store is not a readable private key`, { cause: error });
  }
  if (!fitsAlgorithm(key, algorithm)) throw new UnusableKeyError(`key ${kid} in the store is not a ${algorithm} key`);
  return key;
}

/** The public half of a signing key, with only the members a verifier needs, in a fixed order. */
export async function toPublicJwk(kid: string, algorithm: SigningAlgorithm, privateKey: KeyObject): Promise<PublicJwk> {
  const { kty, n, e, crv, x, y } = await exportJWK(createPublicKey(privateKey));
  const common = { kid, use: 'sig', alg: algorithm } as const;
  if (kty === 'RSA' && n !== undefined && e !== undefined) return { kty: 'RSA', ...common, n, e };
  if (kty === 'EC' && (crv === 'P-256' || crv === 'P-384') && x !== undefined && y !== undefined) return { kty: 'EC', ...common, crv, x, y };
  if (kty === 'OKP' && crv === 'Ed25519' && x !== undefined) return { kty: 'OKP', ...common, crv, x };
  throw new UnusableKeyError(`key ${kid} has no public JWK form this server publishes`);
}
