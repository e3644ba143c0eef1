/**
 * better-sqlite3 behind Kysely with its prepared statements kept: Kysely's SQLite driver asks for
 * a statement on every query, and preparing one (SQLite parses and plans the SQL) costs more than
 * running it. The SQL is still Kysely's; only the preparing is done once per distinct text.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/**
 * Enough for every query the service sends, the group-committed auth log's one text per batch
 * size included; the least recently used statement goes first when a host app sends more.
 */
export const STATEMENT_CACHE_CAPACITY = 256;

export function withStatementCache(database: BetterSqlite3.Database, capacity = STATEMENT_CACHE_CAPACITY): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    prepare(sql): SqliteStatement {
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
