/** The clock, rotation policy and readers the key store and maintenance tests share. */
import type { KeyMetadata, RotationPolicy } from '../src/keys/key-lifecycle.js';
import { keyState } from '../src/keys/key-lifecycle.js';
import type { KeyStore } from '../src/keys/key-store.js';

export const NOW = 1_800_000_000;
export const POLICY: RotationPolicy = { keyTtlSeconds: 3600, tokenTtlSeconds: 600, leadSeconds: 300 };

/** kid → state at `now`, for every key of the store. */
export async function states(keyStore: KeyStore, now: number): Promise<Record<number, string>> {
  return Object.fromEntries((await keyStore.listKeys()).map((key) => [key.kid, keyState(key, now)]));
}

export function byKid(keys: readonly KeyMetadata[], kid: number): KeyMetadata {
  const key = keys.find((candidate) => candidate.kid === kid);
  if (key === undefined) throw new Error(`no key ${String(kid)}`);
  return key;
}
