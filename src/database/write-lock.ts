/** Runs work under the database's write lock, so that check-then-write sequences are atomic across processes. */
import { sql, type Kysely } from 'kysely';
import { dialectOf } from './dialect.js';
import type { Database } from './schema.js';

// Any number no other application on a shared PostgreSQL uses for its advisory locks: "JWKS" in ASCII.
const POSTGRES_WRITE_LOCK = 0x4a574b53;

/**
 * Runs `work` in a transaction that first takes the one write lock every process on this
 * database shares, so another process doing the same waits and then sees this one's writes.
 * SQLite: `BEGIN IMMEDIATE` (the database's own write lock, waited for up to the busy timeout).
 * PostgreSQL: a transaction-scoped advisory lock, released by the commit or rollback, so that a
 * crashed process can never leave it held; reads after it see every earlier holder's commits
 * (READ COMMITTED takes a snapshot per statement). Commits when `work` resolves, rolls back when it throws.
 */
export async function withWriteLock<T>(db: Kysely<Database>, work: (connection: Kysely<Database>) => Promise<T>): Promise<T> {
  if (dialectOf(db) === 'postgres') {
    return db.transaction().execute(async (transaction) => {
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
