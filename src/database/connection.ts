/** Opens the database behind the key store, SQLite or PostgreSQL, and brings its schema up to date. */
import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationResultSet } from 'kysely';
import type { Pool } from 'pg';
import { dialectOf } from './dialect.js';
import { DEFAULT_POOL_SIZE, describeDatabaseLocation, IN_MEMORY_DATABASE, parseDatabaseUrl, type DatabaseLocation } from './location.js';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';
import { loadSqliteDriver, type SqliteDriver } from './sqlite-driver.js';
import { withStatementCache } from './statement-cache.js';
import { withWriteLock } from './write-lock.js';

/** The database cannot be opened or reached, or is not a database. */
export class DatabaseOpenError extends Error {
  override readonly name = 'DatabaseOpenError';
  readonly code = 'ERR_JWKS_DATABASE_OPEN';
}

/** Raised when the schema cannot be brought up to date; the database is left as it was. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  readonly code = 'ERR_JWKS_MIGRATION';
}

export function createMigrator(db: Kysely<Database>, options: { disableTransactions?: boolean } = {}): Migrator {
  return new Migrator({ db, provider: { getMigrations: () => Promise.resolve(migrations) }, ...options });
}

/**
 * Runs the pending migrations, all of them in one transaction that other processes starting at
 * the same time wait for. On PostgreSQL, Kysely's Migrator does exactly that (an advisory lock
 * around one transaction); on SQLite its lock is a no-op, so without our write lock two
 * processes starting together on a new file would both apply the same migration.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<void> {
  if (dialectOf(db) === 'postgres') {
    throwIfFailed(await createMigrator(db).migrateToLatest());
    return;
  }
  // Thrown inside, so that the write lock's transaction rolls back.
  await withWriteLock(db, async (connection) => {
    throwIfFailed(await createMigrator(connection, { disableTransactions: true }).migrateToLatest());
  });
}

function throwIfFailed({ error, results }: MigrationResultSet): void {
  if (error === undefined) return;
  const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'unknown';
  throw new MigrationError(`database migration ${failed} failed`, { cause: error });
}

export interface OpenDatabaseOptions {
  /** SQLite: refuse to create the file, for tools that inspect an existing database. */
  mustExist?: boolean;
  /** PostgreSQL: the most connections this process opens. Default 10. */
  poolSize?: number | undefined;
  /**
   * PostgreSQL: told when an idle connection fails (the server restarted, say). The pool drops
   * it and opens another when needed; unheard, the error would end the process.
   */
  onConnectionError?: (error: Error) => void;
}

/** How long a SQLite statement waits for another process's lock before it fails with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

function openSqlite(SQLite: SqliteDriver, path: string, { mustExist = false }: OpenDatabaseOptions): BetterSqlite3.Database {
  let sqlite: BetterSqlite3.Database | undefined;
  try {
    sqlite = new SQLite(path, { timeout: SQLITE_BUSY_TIMEOUT_MS, fileMustExist: mustExist });
    if (path !== IN_MEMORY_DATABASE) sqlite.pragma('journal_mode = WAL');
    // In WAL mode NORMAL still survives a crash of the process (the WAL is synced at checkpoints);
    // only a power loss can take the last commits. FULL would fsync on every token's auth log.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    return sqlite;
  } catch (error) {
    sqlite?.close();
    throw new DatabaseOpenError(`cannot open ${path} as a SQLite database`, { cause: error });
  }
}

/** pg is loaded only for a PostgreSQL URL: a server on SQLite starts without it. */
async function openPostgres(url: string, { poolSize = DEFAULT_POOL_SIZE, onConnectionError }: OpenDatabaseOptions): Promise<Pool> {
  const { default: pg } = await import('pg');
  // Unix times, kids and counts are BIGINT in PostgreSQL, which pg returns as strings lest a value
  // beyond 2^53 lose precision; ours are far below it, and the store works with numbers.
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, Number);
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types,
    application_name: 'jwks-server',
    connectionTimeoutMillis: 10_000,
    // A process that hangs or is cut off in a transaction must not hold the write lock for long:
    // the server ends such a session after a minute, and TCP keepalives find dead peers.
    idle_in_transaction_session_timeout: 60_000,
    keepAlive: true,
  });
  pool.on('error', (error) => onConnectionError?.(error));
  // pg-pool listens for a client's errors only while it is idle; one that fails while checked out
  // (the server restarting under a query) would emit an unheard 'error' and end the process. The
  // query running on it fails with its own error, which is what the caller is told.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  try {
    await pool.query('SELECT 1');
    return pool;
  } catch (error) {
    await pool.end();
    throw new DatabaseOpenError(`cannot connect to the PostgreSQL database ${describeDatabaseLocation({ dialect: 'postgres', url })}`, { cause: error });
  }
}

async function createKysely(location: DatabaseLocation, options: OpenDatabaseOptions): Promise<Kysely<Database>> {
  if (location.dialect === 'postgres') return new Kysely<Database>({ dialect: new PostgresDialect({ pool: await openPostgres(location.url, options) }) });
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(openSqlite(await loadSqliteDriver(), location.path, options)) }) });
}

/**
 * Opens the database `url` names (see {@link parseDatabaseUrl}) and runs the pending migrations.
 * A SQLite file is created if needed and allowed, and uses write-ahead logging so that readers,
 * such as a grader opening the same file, never block the server; it waits for a busy lock
 * rather than failing at once. A PostgreSQL database must exist; its tables are created.
 */
export async function openDatabase(url: string, options: OpenDatabaseOptions = {}): Promise<Kysely<Database>> {
  const db = await createKysely(parseDatabaseUrl(url), options);
  try {
    await migrateToLatest(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return db;
}
