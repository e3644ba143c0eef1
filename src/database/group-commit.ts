/**
 * Group commit: writes that arrive together share one transaction, and so one commit, instead of
 * paying a commit each. Each caller's promise settles only once the batch holding its item has
 * committed (or failed), so a caller that answers after it never answers for a lost write.
 */

export interface GroupCommit<T> {
  /** Queues `item` for the next batch; resolves once that batch is committed, rejects with its error if it fails. */
  write(item: T): Promise<void>;
}

export interface GroupCommitOptions<T> {
  /** Writes one batch in one transaction; a throw fails every item of the batch, and only those. */
  commit: (batch: readonly T[]) => Promise<void>;
  /** The most items one batch holds; the rest wait for the next. */
  maxBatchSize: number;
}

interface Pending<T> {
  item: T;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * A batch closes when the event loop turns (`setImmediate`): every write queued by the work of
 * one turn, such as the responses whose signatures completed together, commits as one. While a
 * batch is being committed (on PostgreSQL, a round trip), the writes arriving meanwhile gather
 * into the next one, so batches grow with the load instead of commits queueing up.
 */
export function createGroupCommit<T>({ commit, maxBatchSize }: GroupCommitOptions<T>): GroupCommit<T> {
  const queue: Pending<T>[] = [];
  let draining = false;

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, maxBatchSize);
      try {
        await commit(batch.map(({ item }) => item));
        for (const pending of batch) pending.resolve();
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    draining = false;
  }

  return {
    write(item) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        if (draining) return;
        draining = true;
        setImmediate(() => void drain());
      });
    },
  };
}
