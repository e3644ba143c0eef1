/** The group commit by itself: who shares a batch, when each write is told, and what a failed batch fails. */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createGroupCommit } from '../src/database/group-commit.js';

/** A commit that records its batches and finishes only when the test says so. */
function heldCommits() {
  const batches: number[][] = [];
  const finishers: { resolve(): void; reject(error: Error): void }[] = [];
  const commit = (batch: readonly number[]) =>
    new Promise<void>((resolve, reject) => {
      batches.push([...batch]);
      finishers.push({ resolve, reject });
    });
  return { batches, finishers, commit };
}

/** Which of `writes` have settled, and how. */
function outcomes(writes: Promise<void>[]): (() => string)[] {
  return writes.map((write) => {
    let state = 'pending';
    write.then(
      () => (state = 'committed'),
      (error: unknown) => (state = `failed: ${(error as Error).message}`),
    );
    return () => state;
  });
}

describe('group commit', () => {
  it('commits the writes of one turn of the event loop as one batch, and tells each only once it is committed', async () => {
    const { batches, finishers, commit } = heldCommits();
    const log = createGroupCommit({ commit, maxBatchSize: 100 });
    const states = outcomes([log.write(1), log.write(2), log.write(3)]);

    await nextTurn();
    expect(batches).toEqual([[1, 2, 3]]);
    expect(states.map((state) => state())).toEqual(['pending', 'pending', 'pending']);

    finishers[0]?.resolve();
    await nextTurn();
    expect(states.map((state) => state())).toEqual(['committed', 'committed', 'committed']);
  });

  it('closes a batch at its largest size, the rest going into the next', async () => {
    const batches: number[][] = [];
    const log = createGroupCommit<number>({ commit: (batch) => Promise.resolve(void batches.push([...batch])), maxBatchSize: 2 });

    await Promise.all([1, 2, 3, 4, 5].map((item) => log.write(item)));

    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('gathers the writes that arrive while a batch is committing into the next batch', async () => {
    const { batches, finishers, commit } = heldCommits();
    const log = createGroupCommit({ commit, maxBatchSize: 100 });
    const first = outcomes([log.write(1)]);
    await nextTurn();
    const later = outcomes([log.write(2), log.write(3)]);
    await nextTurn();
    // Still one commit: the later writes wait for the one in flight rather than starting their own.
    expect(batches).toEqual([[1]]);

    finishers[0]?.resolve();
    await nextTurn();
    expect(batches).toEqual([[1], [2, 3]]);
    expect([...first, ...later].map((state) => state())).toEqual(['committed', 'pending', 'pending']);
    finishers[1]?.resolve();
    await nextTurn();
    expect(later.map((state) => state())).toEqual(['committed', 'committed']);
  });

  it('fails exactly the writes of a failed batch, with its error, and goes on with the next', async () => {
    const { batches, finishers, commit } = heldCommits();
    const log = createGroupCommit({ commit, maxBatchSize: 100 });
    const failed = outcomes([log.write(1), log.write(2)]);
    await nextTurn();
    const next = outcomes([log.write(3)]);

    finishers[0]?.reject(new Error('disk full'));
    await nextTurn();
    expect(failed.map((state) => state())).toEqual(['failed: disk full', 'failed: disk full']);
    expect(batches).toEqual([[1, 2], [3]]);
    finishers[1]?.resolve();
    await nextTurn();
    expect(next.map((state) => state())).toEqual(['committed']);

    // And after all is written, a new write starts a new batch of its own.
    const last = log.write(4);
    await nextTurn();
    finishers[2]?.resolve();
    await expect(last).resolves.toBeUndefined();
    expect(batches.at(-1)).toEqual([4]);
  });
});
