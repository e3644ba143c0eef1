/**
 * The SQL the key store is built of: reads and writes of `keys` and `key_lifecycle`, all through
 * Kysely. Each takes the executor to run on: the database, or the connection holding the write lock.
 */
import type { Kysely } from 'kysely';
import { isSigningAlgorithm, type SigningAlgorithm } from './algorithms.js';
import type { Database } from '../database/schema.js';
import type { KeyMetadata, KeySchedule, KeyState } from './key-lifecycle.js';

/** The database did not behave as the store relies on. */
export class KeyStoreError extends Error {
  override readonly name = 'KeyStoreError';
  readonly code = 'ERR_JWKS_KEY_STORE';
}

export type Executor = Kysely<Database>;

export interface KeyStateCount {
  alg: string;
  state: KeyState;
  count: number;
}

interface MetadataRow {
  kid: number;
  exp: number;
  alg: string;
  published_at: number;
  activates_at: number;
  retires_at: number;
  revoked_at: number | null;
}

export function toMetadata(row: MetadataRow): KeyMetadata {
  if (!isSigningAlgorithm(row.alg)) throw new KeyStoreError(`key ${String(row.kid)} has an algorithm this server does not know`);
  return {
    kid: row.kid,
    alg: row.alg,
    publishedAt: row.published_at,
    activatesAt: row.activates_at,
    retiresAt: row.retires_at,
    exp: row.exp,
    revokedAt: row.revoked_at,
  };
}

export function selectMetadata(executor: Executor) {
  return executor
    .selectFrom('keys')
    .innerJoin('key_lifecycle as lifecycle', 'lifecycle.kid', 'keys.kid')
    .select(['keys.kid', 'keys.exp', 'lifecycle.alg', 'lifecycle.published_at', 'lifecycle.activates_at', 'lifecycle.retires_at', 'lifecycle.revoked_at']);
}

/** The unrevoked, unexpired keys of one algorithm. */
export async function liveKeysOf(executor: Executor, algorithm: SigningAlgorithm, now: number): Promise<KeyMetadata[]> {
  const rows = await selectMetadata(executor)
    .where('lifecycle.alg', '=', algorithm)
    .where('lifecycle.revoked_at', 'is', null)
    .where('keys.exp', '>', now)
    .execute();
  return rows.map(toMetadata);
}

/** The unrevoked key of `algorithm` that expired last: what `POST /auth?expired=true` signs with. */
export function selectLatestExpiredKey(executor: Executor, algorithm: string, now: number) {
  return selectMetadata(executor)
    .where('lifecycle.alg', '=', algorithm)
    .where('lifecycle.revoked_at', 'is', null)
    .where('keys.exp', '<=', now)
    .orderBy('keys.exp', 'desc')
    .orderBy('keys.kid', 'desc')
    .limit(1);
}

export async function hasExpiredKey(executor: Executor, algorithm: SigningAlgorithm, now: number): Promise<boolean> {
  return (await selectLatestExpiredKey(executor, algorithm, now).executeTakeFirst()) !== undefined;
}

/**
 * Keys that expired, or were revoked, at or before `cutoff`: two queries rather than one with an
 * OR across both tables, so that each walks an index (`keys_exp`, `key_lifecycle_revoked`)
 * instead of every key ever made.
 */
export async function findPrunableKeys(executor: Executor, cutoff: number): Promise<{ kid: number; alg: string }[]> {
  const selectCandidates = () => executor.selectFrom('keys').innerJoin('key_lifecycle as lifecycle', 'lifecycle.kid', 'keys.kid').select(['keys.kid', 'lifecycle.alg']);
  const [expired, revoked] = await Promise.all([
    selectCandidates().where('keys.exp', '<=', cutoff).execute(),
    selectCandidates().where('lifecycle.revoked_at', 'is not', null).where('lifecycle.revoked_at', '<=', cutoff).execute(),
  ]);
  return [...new Map([...expired, ...revoked].map((key) => [key.kid, key])).values()];
}

/** Keys newer than every lifecycle row: written by something that does not keep lifecycles. */
export async function findKeysWithoutLifecycle(executor: Executor): Promise<{ kid: number; key: Buffer | string; exp: number }[]> {
  return executor
    .selectFrom('keys')
    .select(['kid', 'key', 'exp'])
    .where('kid', '>', (eb) => eb.selectFrom('key_lifecycle').select((inner) => inner.fn.coalesce(inner.fn.max('kid'), inner.lit(0)).as('newest')))
    .execute();
}

export async function insertLifecycle(executor: Executor, kid: number, algorithm: SigningAlgorithm, schedule: KeySchedule, revokedAt: number | null = null): Promise<void> {
  await executor
    .insertInto('key_lifecycle')
    .values({ kid, alg: algorithm, published_at: schedule.publishedAt, activates_at: schedule.activatesAt, retires_at: schedule.retiresAt, revoked_at: revokedAt })
    .execute();
}

/** Moves a stored key's schedule; its publication time never changes. */
export async function updateSchedule(executor: Executor, kid: number, schedule: KeySchedule): Promise<void> {
  await executor.updateTable('keys').set({ exp: schedule.exp }).where('kid', '=', kid).execute();
  await executor.updateTable('key_lifecycle').set({ activates_at: schedule.activatesAt, retires_at: schedule.retiresAt }).where('kid', '=', kid).execute();
}

/** How many keys of each algorithm are in each state at `now`: one aggregate in the database, which may hold many expired keys awaiting pruning. */
export async function countKeysByState(executor: Executor, now: number): Promise<KeyStateCount[]> {
  const rows = await executor
    .selectFrom('keys')
    .innerJoin('key_lifecycle as lifecycle', 'lifecycle.kid', 'keys.kid')
    .select((eb) => [
      'lifecycle.alg',
      eb
        .case()
        .when('lifecycle.revoked_at', 'is not', null)
        .then('revoked')
        .when('keys.exp', '<=', now)
        .then('expired')
        .when('lifecycle.retires_at', '<=', now)
        .then('retired')
        .when('lifecycle.activates_at', '<=', now)
        .then('active')
        .else('published')
        .end()
        .$castTo<KeyState>()
        .as('state'),
      eb.fn.countAll<number | string>().as('count'),
    ])
    .groupBy(['lifecycle.alg', 'state'])
    .execute();
  return rows.map(({ alg, state, count }) => ({ alg, state, count: Number(count) }));
}
