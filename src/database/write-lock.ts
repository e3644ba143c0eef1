/** Runs work under SQLite's write lock, so that check-then-write sequences are atomic across processes. */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/**
 * Runs `work` in a `BEGIN IMMEDIATE` transaction on one connection: the write lock is taken
 * before the first read, so another process doing the same waits (busy timeout) and then sees
 * this one's writes. Commits when `work` resolves, rolls back when it throws.
 */
export async function withWriteLock<T>(db: Kysely<Database>, work: (connection: Kysely<Database>) => Promise<T>): Promise<T> {
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
