/**
 * The column types the migrations use, in each database's own words: the tables and columns are
 * the same on both, but SQLite has no BYTEA or TIMESTAMPTZ and PostgreSQL no BLOB or AUTOINCREMENT.
 */
import type { ColumnDefinitionBuilder, Kysely } from 'kysely';
import { dialectOf } from '../dialect.js';

export interface ColumnTypes {
  /** Raw bytes: private keys, salts. */
  bytes: 'blob' | 'bytea';
  /** Unix seconds. SQLite's INTEGER is 64 bits already; PostgreSQL's is 32, which ends in 2038. */
  unixTime: 'integer' | 'bigint';
  /** A point in time the database writes itself (CURRENT_TIMESTAMP), in UTC. */
  timestamp: 'timestamp' | 'timestamptz';
  /**
   * Makes an INTEGER primary key number new rows itself, never reusing a number, even that of
   * the newest row after it is deleted (SQLite's AUTOINCREMENT, PostgreSQL's identity column).
   */
  autoIncrementKey: (column: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;
}

export function columnTypes(db: Kysely<unknown>): ColumnTypes {
  if (dialectOf(db) === 'postgres') {
    return { bytes: 'bytea', unixTime: 'bigint', timestamp: 'timestamptz', autoIncrementKey: (column) => column.primaryKey().generatedByDefaultAsIdentity() };
  }
  return { bytes: 'blob', unixTime: 'integer', timestamp: 'timestamp', autoIncrementKey: (column) => column.primaryKey().autoIncrement() };
}
