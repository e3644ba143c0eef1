/**
 * better-sqlite3 behind Kysely with its prepared statements kept: Kysely's SQLite driver asks for
 * a statement on every query, and preparing one (SQLite parses and plans the SQL) costs more than
 * running it. The SQL is still Kysely's; only the preparing is done once per distinct text. And a
 * ROLLBACK after SQLite has rolled back by itself does nothing, rather than hide why it did.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/**
 * Enough for every query the service sends, the group-committed auth log's one text per batch
 * size included; the least recently used statement goes first when a host app sends more.
 */
export const STATEMENT_CACHE_CAPACITY = 256;

/**
 * SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY,
 * SQLITE_NOMEM); the ROLLBACK that Kysely or our write lock then sends would fail with "no
 * transaction is active" and replace the error that says why. With no transaction open, it does nothing.
 */
const NOTHING_TO_ROLL_BACK: SqliteStatement = {
  reader: false,
  all: () => [],
  run: () => ({ changes: 0, lastInsertRowid: 0 }),
  iterate: () => [][Symbol.iterator](),
};

export function withStatementCache(database: BetterSqlite3.Database, capacity = STATEMENT_CACHE_CAPACITY): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    prepare(sql): SqliteStatement {
      if ((sql === 'rollback' || sql === 'ROLLBACK') && !database.inTransaction) return NOTHING_TO_ROLL_BACK;
      const cached = statements.get(sql);
      // A statement still iterating (a streamed query) cannot run again until it is done.
      if (cached?.busy === true) return database.prepare(sql);
      if (cached !== undefined) {
        // A Map iterates in insertion order: re-inserting keeps the least recently used first.
        statements.delete(sql);
        statements.set(sql, cached);
        return cached;
      }
      const statement = database.prepare(sql);
      statements.set(sql, statement);
      if (statements.size > capacity) statements.delete(statements.keys().next().value ?? sql);
      return statement;
    },
    close() {
      statements.clear();
      database.close();
    },
  };
}
