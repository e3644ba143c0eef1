/** The Kysely description of every table; a renamed column breaks the build, not production. */
import type { ColumnType, Generated } from 'kysely';

/**
 * The course-compatible key table. External graders read it with `SELECT * FROM keys` and map
 * columns by position, so it holds exactly these three columns; anything else we learn about a
 * key belongs in a table of its own keyed by kid.
 */
export interface KeysTable {
  kid: Generated<number>;
  /** The private key as PKCS#1 PEM. Databases written by other servers may hold it as TEXT. */
  key: ColumnType<Buffer | string, Buffer, never>;
  /** Expiry, in unix seconds. */
  exp: number;
}

export interface Database {
  keys: KeysTable;
}
