/**
 * Copies everything a server keeps, from one database into an empty one of either kind: the
 * keys as they are stored (encrypted or not), their lifecycles, users, auth logs and OAuth
 * state. A server started on the copy serves the same JWKS and goes on where the source was.
 */
import { sql, type Kysely } from 'kysely';
import { dialectOf, type Dialect } from './dialect.js';
import type { Database } from './schema.js';
import { withWriteLock } from './write-lock.js';

/** The target holds data already, the source no key, or a row the target cannot take; no row is written. */
export class DatabaseCopyError extends Error {
  override readonly name = 'DatabaseCopyError';
  readonly code = 'ERR_JWKS_DATABASE_COPY';
}

type CopiedTable = Exclude<keyof Database, 'key_changes'>;

interface TableCopy {
  table: CopiedTable;
  columns: readonly string[];
  /** A unique column to read the rows in order of, a page at a time. */
  orderBy: string;
  /** Columns the database fills with CURRENT_TIMESTAMP, which each dialect writes its own way. */
  timestamps?: readonly string[];
  /** An identity column: the target's sequence continues after the source's. */
  identity?: string;
}

/**
 * Parents before children, for the foreign keys. `key_changes` is not copied: the target's
 * triggers count the copy as a change of its own keys, which is what its servers need to know.
 */
const TABLES: readonly TableCopy[] = [
  { table: 'keys', columns: ['kid', 'key', 'exp'], orderBy: 'kid', identity: 'kid' },
  { table: 'key_lifecycle', columns: ['kid', 'alg', 'published_at', 'activates_at', 'retires_at', 'revoked_at'], orderBy: 'kid' },
  { table: 'key_encryption', columns: ['id', 'kdf', 'salt', 'verifier'], orderBy: 'id' },
  { table: 'users', columns: ['id', 'username', 'password_hash', 'email', 'date_registered', 'last_login'], orderBy: 'id', timestamps: ['date_registered', 'last_login'], identity: 'id' },
  { table: 'auth_logs', columns: ['id', 'request_ip', 'request_timestamp', 'user_id'], orderBy: 'id', timestamps: ['request_timestamp'], identity: 'id' },
  { table: 'oauth_clients', columns: ['client_id', 'secret_digest', 'scopes', 'grant_types', 'audience', 'extra_claims', 'created_at', 'disabled_at'], orderBy: 'client_id', timestamps: ['created_at', 'disabled_at'] },
  { table: 'oauth_revocations', columns: ['jti', 'exp'], orderBy: 'jti' },
];

// Rows per insert: at eight columns 16,000 parameters, below SQLite's 32,766 and PostgreSQL's 65,535.
const PAGE_SIZE = 2000;

/** Rows copied, per table. */
export type CopyReport = Readonly<Record<CopiedTable, number>>;

type Row = Record<string, unknown>;
// The copy walks tables by name; each table's columns are listed above, not inferred.
type AnyTables = Record<string, Row>;

/**
 * Copies every table from `source` into `target`, both migrated to the same schema. The source
 * is read in one snapshot; the target is written in one transaction under the write lock every
 * server takes, so a server starting on the target meanwhile waits and then finds the copied
 * keys. Throws {@link DatabaseCopyError}, writing no row, if the target holds any row already or
 * the source holds no key.
 */
export async function copyDatabase(source: Kysely<Database>, target: Kysely<Database>): Promise<CopyReport> {
  const sourceDialect = dialectOf(source);
  const targetDialect = dialectOf(target);
  return readSnapshot(source, (snapshot) =>
    withWriteLock(target, async (transaction) => {
      await refuseIfNoKeys(snapshot);
      await refuseIfNotEmpty(transaction);
      const report: Partial<Record<CopiedTable, number>> = {};
      for (const table of TABLES) {
        report[table.table] = await copyTable(snapshot as unknown as Kysely<AnyTables>, transaction as unknown as Kysely<AnyTables>, table, targetDialect);
        if (table.identity !== undefined) {
          const next = await lastIdentityValue(snapshot, sourceDialect, table.table, table.identity);
          await continueIdentity(transaction, targetDialect, table.table, table.identity, next);
        }
      }
      return report as CopyReport;
    }),
  );
}

/** Reads in one transaction that sees the database as of one moment, while servers go on writing. */
function readSnapshot<T>(db: Kysely<Database>, read: (snapshot: Kysely<Database>) => Promise<T>): Promise<T> {
  // SQLite in WAL mode: a read transaction sees the commits made before its first read, and only those.
  if (dialectOf(db) === 'sqlite') return db.transaction().execute(read);
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(read);
}

/** Servers started on a copy without keys would make new ones: the very thing a copy is for avoiding. */
async function refuseIfNoKeys(source: Kysely<Database>): Promise<void> {
  const key = await source.selectFrom('keys').select('kid').limit(1).executeTakeFirst();
  if (key === undefined) throw new DatabaseCopyError('the source database holds no keys: is DATABASE_URL the database the servers use?');
}

async function refuseIfNotEmpty(target: Kysely<Database>): Promise<void> {
  const untyped = target as unknown as Kysely<AnyTables>;
  for (const { table } of TABLES) {
    const row = await untyped.selectFrom(table).select(sql<number>`1`.as('present')).limit(1).executeTakeFirst();
    if (row !== undefined) throw new DatabaseCopyError(`the target database is not empty (its ${table} table has rows): a copy goes only into an empty database`);
  }
}

async function copyTable(source: Kysely<AnyTables>, target: Kysely<AnyTables>, { table, columns, orderBy, timestamps = [] }: TableCopy, targetDialect: Dialect): Promise<number> {
  let copied = 0;
  let last: unknown;
  for (;;) {
    let query = source.selectFrom(table).select(columns).orderBy(orderBy).limit(PAGE_SIZE);
    if (last !== undefined) query = query.where(orderBy, '>', last);
    const rows = await query.execute();
    if (rows.length === 0) return copied;
    const converted = rows.map((row) => convertRow(row, table, timestamps, targetDialect));
    try {
      await target.insertInto(table).values(converted).execute();
    } catch (error) {
      // Which table, and the database's reason (a constraint, say); never the rows, which hold key material.
      throw new DatabaseCopyError(`cannot copy ${table}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    copied += rows.length;
    last = rows.at(-1)?.[orderBy];
  }
}

function convertRow(row: Row, table: CopiedTable, timestamps: readonly string[], targetDialect: Dialect): Row {
  const converted: Row = { ...row };
  // Servers of the course wrote the PEM as TEXT, which SQLite keeps as it is; BYTEA takes only bytes, and the key store reads either.
  if (table === 'keys' && typeof row.key === 'string' && targetDialect === 'postgres') converted.key = Buffer.from(row.key, 'utf8');
  for (const column of timestamps) converted[column] = convertTimestamp(row[column], targetDialect, `${table}.${column}`);
  return converted;
}

/**
 * SQLite's CURRENT_TIMESTAMP is text, `YYYY-MM-DD HH:MM:SS` in UTC; PostgreSQL's a TIMESTAMPTZ,
 * read as a Date. Text handed to PostgreSQL as it is would be read in the session's time zone.
 */
function convertTimestamp(value: unknown, targetDialect: Dialect, column: string): unknown {
  if (value === null) return null;
  const moment = readTimestamp(value, column);
  if (targetDialect === 'postgres') return moment;
  return typeof value === 'string' ? value : moment.toISOString().slice(0, 19).replace('T', ' ');
}

function readTimestamp(value: unknown, column: string): Date {
  if (value instanceof Date) return value;
  const moment = typeof value === 'string' ? new Date(`${value.trim().replace(' ', 'T')}Z`) : undefined;
  if (moment === undefined || Number.isNaN(moment.getTime())) throw new DatabaseCopyError(`${column} holds ${JSON.stringify(value)}, which is not a UTC timestamp`);
  return moment;
}

/**
 * The highest number the source's identity has handed out, which may be above any row it still
 * holds: expired keys are deleted, and a kid once published must never name another key.
 */
async function lastIdentityValue(db: Kysely<Database>, dialect: Dialect, table: CopiedTable, column: string): Promise<number> {
  const untyped = db as unknown as Kysely<AnyTables>;
  const highest = await untyped.selectFrom(table).select((eb) => eb.fn.max(column).as('highest')).executeTakeFirst();
  const sequence =
    dialect === 'sqlite'
      ? await sql<{ value: number | null }>`SELECT seq AS value FROM sqlite_sequence WHERE name = ${table}`.execute(db)
      : await sql<{ value: number | null }>`SELECT last_value AS value FROM pg_sequences
          WHERE format('%I.%I', schemaname, sequencename) = pg_get_serial_sequence(${table}, ${column})`.execute(db);
  return Math.max(Number(highest?.highest ?? 0), sequence.rows[0]?.value ?? 0);
}

async function continueIdentity(db: Kysely<Database>, dialect: Dialect, table: CopiedTable, column: string, last: number): Promise<void> {
  if (last === 0) return;
  if (dialect === 'postgres') {
    await sql`SELECT setval(pg_get_serial_sequence(${table}, ${column}), ${last})`.execute(db);
    return;
  }
  // SQLite keeps an AUTOINCREMENT table's highest number in sqlite_sequence, a row once the table had one.
  const updated = await sql`UPDATE sqlite_sequence SET seq = ${last} WHERE name = ${table}`.execute(db);
  if (updated.numAffectedRows === 0n) await sql`INSERT INTO sqlite_sequence (name, seq) VALUES (${table}, ${last})`.execute(db);
}
