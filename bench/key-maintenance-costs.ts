/** What the server's key upkeep costs its event loop: generating and rotating keys, and pruning the large database's expired ones. */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../src/keys/algorithms.js';
import { systemClock } from '../src/common/clock.js';
import { openDatabase } from '../src/database/connection.js';
import { createKeyStore } from '../src/keys/key-store.js';
import { createKeyring } from '../src/keys/keyring.js';
import { QUICK, TEN_YEARS } from './run-settings.js';

export interface KeyGenerationStall {
  firstStartMaxMs: number;
  rotationsMaxMs: number;
}

export interface Pruning {
  nothingDueMs: number;
  allDueMs: number;
  allDueMaxStallMs: number;
  pruned: number;
}

/**
 * The longest event-loop stall while keys are generated: a first start with every algorithm
 * (fifteen keys, generated, stored, imported and published), then rounds of rotations.
 */
export async function keyGenerationStall(directory: string): Promise<KeyGenerationStall> {
  const db = await openDatabase(join(directory, 'stall.db'));
  const keyStore = createKeyStore(db);
  const policy = { keyTtlSeconds: 3600, tokenTtlSeconds: 900, leadSeconds: 300 };
  const keyring = createKeyring({ keyStore, algorithms: [...SIGNING_ALGORITHMS] as [SigningAlgorithm, ...SigningAlgorithm[]], policy, expiredKeyRetentionSeconds: 86_400, clock: systemClock });
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  try {
    histogram.enable();
    await keyring.current();
    histogram.disable();
    const firstStartMaxMs = histogram.max / 1e6;
    histogram.reset();
    histogram.enable();
    for (let round = 0; round < (QUICK ? 1 : 5); round += 1) {
      for (const algorithm of SIGNING_ALGORITHMS) await keyStore.rotate(systemClock(), algorithm, policy);
      await keyring.reload();
      await keyring.current();
    }
    histogram.disable();
    return { firstStartMaxMs: Number(firstStartMaxMs.toFixed(1)), rotationsMaxMs: Number((histogram.max / 1e6).toFixed(1)) };
  } finally {
    await db.destroy();
  }
}

/**
 * Pruning on the large database, in a copy of it: a scheduler step with nothing due, then a first
 * prune of all 100,000 expired keys at once, with the longest event-loop stall while it runs.
 */
export async function pruning(largeDatabase: string, directory: string): Promise<Pruning> {
  const copy = join(directory, 'prune.db');
  copyFileSync(largeDatabase, copy);
  const db = await openDatabase(copy, { mustExist: true });
  try {
    const keyStore = createKeyStore(db);
    const now = systemClock();
    let startedAt = performance.now();
    await keyStore.prune(now, Number(TEN_YEARS));
    const nothingDueMs = performance.now() - startedAt;
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    startedAt = performance.now();
    const pruned = (await keyStore.prune(now, 24 * 3600)).length;
    const allDueMs = performance.now() - startedAt;
    histogram.disable();
    return { nothingDueMs: Number(nothingDueMs.toFixed(1)), allDueMs: Math.round(allDueMs), allDueMaxStallMs: Number((histogram.max / 1e6).toFixed(1)), pruned };
  } finally {
    await db.destroy();
  }
}
