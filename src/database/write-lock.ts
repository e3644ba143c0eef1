/** Runs work under the database's write lock, so that check-then-write sequences are atomic across processes. */
import { sql, type Kysely } from 'kysely';
import { dialectOf } from './dialect.js';
import type { Database } from './schema.js';

// Any number no other application on a shared PostgreSQL uses for its advisory locks: "JWKS" in ASCII.
const POSTGRES_WRITE_LOCK = 0x4a574b53;
const POSTGRES_LOCK_TIMEOUT_MS = 10_000;

/**
 * Runs `work` in a transaction that first takes the one write lock every process on this
 * database shares, so another process doing the same waits and then sees this one's writes.
 * SQLite: `BEGIN IMMEDIATE` (the database's own write lock, waited for up to the busy timeout).
 * PostgreSQL: a transaction-scoped advisory lock, released by the commit or rollback, so that a
 * crashed process never leaves it held (a hung one loses it with its connection, see
 * connection.ts); reads after it see every earlier holder's commits
 * (READ COMMITTED takes a snapshot per statement). Commits when `work` resolves, rolls back when it throws.
 */
export async function withWriteLock<T>(db: Kysely<Database>, work: (connection: Kysely<Database>) => Promise<T>): Promise<T> {
  if (dialectOf(db) === 'postgres') {
    // READ COMMITTED whatever the server's default: a stricter level would fail the waiters'
    // transactions on the very rows the lock already keeps them from writing at once.
    return db
      .transaction()
      .setIsolationLevel('read committed')
      .execute(async (transaction) => {
        // Like SQLite's busy timeout: a holder that hangs makes the others fail and retry, not wait for ever.
        await sql`SET LOCAL lock_timeout = ${sql.lit(`${String(POSTGRES_LOCK_TIMEOUT_MS)}ms`)}`.execute(transaction);
        await sql`SELECT pg_advisory_xact_lock(${sql.lit(POSTGRES_WRITE_LOCK)})`.execute(transaction);
        return work(transaction);
      });
  }
  return db.connection().execute(async (connection) => {
    await sql`BEGIN IMMEDIATE`.execute(connection);
    try {
      const result = await work(connection);
      await sql`COMMIT`.execute(connection);
      return result;
    } catch (error) {
      await sql`ROLLBACK`.execute(connection);
      throw error;
    }
  });
}
