/**
 * The life of a signing key, as pure functions of its timestamps (unix seconds):
 *
 *   published ──> active ──> retired ──> expired ──> pruned
 *   (in the JWKS,  (signs     (in the JWKS   (out of the    (row deleted)
 *    not signing)   tokens)    until its      JWKS; kept for
 *                              tokens expire)  ?expired=true)
 *
 * and `revoked`, which takes a key out of the JWKS and out of use at once, from any state.
 */
import type { SigningAlgorithm } from './algorithms.js';

export const KEY_STATES = ['published', 'active', 'retired', 'expired', 'revoked'] as const;
export type KeyState = (typeof KEY_STATES)[number];

/** When a key enters each state. `exp` is also the `keys.exp` column: the end of its publication. */
export interface KeySchedule {
  publishedAt: number;
  activatesAt: number;
  retiresAt: number;
  exp: number;
}

export interface KeyMetadata extends KeySchedule {
  kid: number;
  alg: SigningAlgorithm;
  revokedAt: number | null;
}

export interface RotationPolicy {
  /** How long each key signs. */
  keyTtlSeconds: number;
  /** The longest token lifetime: how long a retired key stays published. */
  tokenTtlSeconds: number;
  /** How long a key is published before it may sign: at least as long as clients cache the JWKS. */
  leadSeconds: number;
}

export function keyState(key: Pick<KeyMetadata, 'revokedAt'> & KeySchedule, now: number): KeyState {
  if (key.revokedAt !== null) return 'revoked';
  if (now >= key.exp) return 'expired';
  if (now >= key.retiresAt) return 'retired';
  if (now >= key.activatesAt) return 'active';
  return 'published';
}

/**
 * The schedule of a key that signs from `activatesAt` for one key lifetime. It stays published
 * one token lifetime longer, so that `exp = now + TOKEN_TTL` never outlives the key that signed.
 */
export function scheduleKey(policy: RotationPolicy, publishedAt: number, activatesAt: number): KeySchedule {
  const retiresAt = activatesAt + policy.keyTtlSeconds;
  return { publishedAt, activatesAt, retiresAt, exp: retiresAt + policy.tokenTtlSeconds };
}

/** The schedule of a key that is already expired when it is made, for `POST /auth?expired=true`. */
export function scheduleExpiredKey(policy: RotationPolicy, now: number): KeySchedule {
  const exp = now - policy.keyTtlSeconds;
  const retiresAt = exp - policy.tokenTtlSeconds;
  const activatesAt = retiresAt - policy.keyTtlSeconds;
  return { publishedAt: activatesAt, activatesAt, retiresAt, exp };
}

/**
 * The schedule given to a key found in `keys` with no lifecycle (made by an earlier release or
 * another server): published from now until its `exp`, so that its tokens keep verifying, but
 * retired: no client can be assumed to know it yet. When nothing else can sign, maintenance lets
 * the key that retired last sign again until a successor is known, which is how keys from before
 * lifecycles carry a running deployment over.
 */
export function scheduleAdoptedKey(exp: number, now: number): KeySchedule {
  const since = Math.min(now, exp);
  return { publishedAt: since, activatesAt: since, retiresAt: since, exp };
}

/** The unrevoked keys of one algorithm that matter for signing at `now`: the active one and those waiting. */
export interface SigningLine<Key extends KeyMetadata = KeyMetadata> {
  active: Key | undefined;
  /** Published keys not yet signing, the next to sign first. */
  waiting: Key[];
}

export function signingLine<Key extends KeyMetadata>(keys: readonly Key[], now: number): SigningLine<Key> {
  let active: Key | undefined;
  const waiting: Key[] = [];
  for (const key of keys) {
    const state = keyState(key, now);
    if (state === 'active' && (active === undefined || key.activatesAt > active.activatesAt)) active = key;
    if (state === 'published') waiting.push(key);
  }
  waiting.sort((a, b) => a.activatesAt - b.activatesAt || a.kid - b.kid);
  return { active, waiting };
}

/** How many keys maintenance must create for one algorithm: an active key, a successor, an expired key. */
export function missingKeyCount(line: SigningLine, hasExpiredKey: boolean): number {
  const needsActive = line.active === undefined && line.waiting.length === 0;
  // Promoting the only waiting key to active leaves no successor behind it.
  const waitingAfterPromotion = line.active === undefined ? line.waiting.length - 1 : line.waiting.length;
  const needsSuccessor = needsActive || waitingAfterPromotion <= 0;
  return Number(needsActive) + Number(needsSuccessor) + Number(!hasExpiredKey);
}
