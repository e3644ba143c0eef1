/**
 * The in-memory view of the key store that requests are served from: the imported signing keys
 * and the public JWKS, rebuilt only when a key in it expires, never per request.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { exportJWK } from 'jose';
import type { Clock } from './clock.js';
import { KeyStoreError, type KeyStore, type StoredKey } from './key-store.js';

export const SIGNING_ALGORITHM = 'RS256';

/** An RSA public key as published in the JWKS (RFC 7517); never holds a private member. */
export interface PublicJwk {
  kty: 'RSA';
  kid: string;
  use: 'sig';
  alg: typeof SIGNING_ALGORITHM;
  n: string;
  e: string;
}

export interface Jwks {
  keys: PublicJwk[];
}

export interface KeyringKey {
  kid: string;
  /** Expiry, in unix seconds. */
  exp: number;
  privateKey: KeyObject;
}

export interface KeyringSnapshot {
  /** The unexpired key that expires last: every new token is signed with it. */
  signingKey: KeyringKey;
  /** The most recently expired key, for `POST /auth?expired=true`. */
  expiredKey: KeyringKey;
  /** Every unexpired public key. */
  jwks: Jwks;
  /** The unexpired public key with this kid, if there is one. */
  findPublishedKey(kid: string): PublicJwk | undefined;
  /** The unix second at which the first of these keys expires and the snapshot goes stale. */
  validUntil: number;
}

export interface Keyring {
  /** The snapshot for this moment, rebuilt from the store (generating keys where needed) if stale. */
  current(): Promise<KeyringSnapshot>;
}

export interface KeyringOptions {
  keyStore: KeyStore;
  keyTtlSeconds: number;
  clock: Clock;
  /** Told the kids of keys the keyring had to generate, so that the caller can log it. */
  onKeysGenerated?: (kids: readonly number[]) => void;
}

/** Raised when a row of the store cannot be used as an RSA signing key. */
export class UnusableKeyError extends Error {
  override readonly name = 'UnusableKeyError';
  readonly code = 'ERR_JWKS_UNUSABLE_KEY';
}

function importKey(stored: StoredKey): KeyringKey {
  try {
    return { kid: String(stored.kid), exp: stored.exp, privateKey: createPrivateKey(stored.privateKeyPem) };
  } catch (error) {
    // The cause says what the parser disliked; the message deliberately holds none of the key.
    throw new UnusableKeyError(`key ${String(stored.kid)} in the store is not a readable private key`, { cause: error });
  }
}

async function toPublicJwk(key: KeyringKey): Promise<PublicJwk> {
  const { kty, n, e } = await exportJWK(createPublicKey(key.privateKey));
  if (kty !== 'RSA' || n === undefined || e === undefined) {
    throw new UnusableKeyError(`key ${key.kid} in the store is not an RSA key`);
  }
  return { kty: 'RSA', kid: key.kid, use: 'sig', alg: SIGNING_ALGORITHM, n, e };
}

export function createKeyring({ keyStore, keyTtlSeconds, clock, onKeysGenerated }: KeyringOptions): Keyring {
  let snapshot: KeyringSnapshot | undefined;
  let rebuilding: Promise<KeyringSnapshot> | undefined;

  async function rebuild(): Promise<KeyringSnapshot> {
    const now = clock();
    const { createdKids } = await keyStore.ensureKeys(now, keyTtlSeconds);
    if (createdKids.length > 0) onKeysGenerated?.(createdKids);
    const [unexpired, expired] = await Promise.all([keyStore.listUnexpiredKeys(now), keyStore.findLatestExpiredKey(now)]);
    const unexpiredKeys = unexpired.map(importKey);
    const signingKey = unexpiredKeys[0];
    const firstToExpire = unexpiredKeys.at(-1);
    if (signingKey === undefined || firstToExpire === undefined || expired === undefined) {
      throw new KeyStoreError('the key store lost its keys while the keyring was loading them');
    }
    const published = await Promise.all(unexpiredKeys.map(toPublicJwk));
    const publishedByKid = new Map(published.map((jwk) => [jwk.kid, jwk]));
    return {
      signingKey,
      expiredKey: importKey(expired),
      jwks: { keys: published },
      findPublishedKey: (kid) => publishedByKid.get(kid),
      validUntil: firstToExpire.exp,
    };
  }

  return {
    current() {
      if (snapshot !== undefined && clock() < snapshot.validUntil) return Promise.resolve(snapshot);
      // One rebuild at a time: concurrent requests at the moment of expiry share it.
      rebuilding ??= rebuild()
        .then((fresh) => (snapshot = fresh))
        .finally(() => {
          rebuilding = undefined;
        });
      return rebuilding;
    },
  };
}
