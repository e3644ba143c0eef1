/** SQLite's prepared statements kept by SQL text: reused, bounded, and never handed out while still iterating. */
import { Kysely, SqliteDialect } from 'kysely';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { withStatementCache } from '../src/database/statement-cache.js';

const SQLite = await loadSqliteDriver();

function cachedDatabase(capacity?: number) {
  const raw = new SQLite(':memory:');
  let prepared = 0;
  const prepare = raw.prepare.bind(raw);
  raw.prepare = (sql: string) => {
    prepared += 1;
    return prepare(sql);
  };
  const database = withStatementCache(raw, capacity);
  onTestFinished(() => {
    if (raw.open) database.close();
  });
  return { raw, database, prepared: () => prepared };
}

describe('the statement cache', () => {
  it('prepares each SQL text once however often Kysely sends it, and the statements still take new parameters', async () => {
    const { raw, database, prepared } = cachedDatabase();
    raw.exec('CREATE TABLE t (n INTEGER)');
    const db = new Kysely<{ t: { n: number } }>({ dialect: new SqliteDialect({ database }) });

    for (const n of [1, 2, 3]) await db.insertInto('t').values({ n }).execute();
    const rows = await db.selectFrom('t').select('n').where('n', '>', 1).execute();
    const again = await db.selectFrom('t').select('n').where('n', '>', 2).execute();

    expect(rows).toEqual([{ n: 2 }, { n: 3 }]);
    expect(again).toEqual([{ n: 3 }]);
    expect(prepared()).toBe(2);
  });

  it('keeps at most its capacity, dropping the statement used least recently', () => {
    const { database, prepared } = cachedDatabase(2);
    const a = database.prepare('SELECT 1');
    database.prepare('SELECT 2');
    expect(database.prepare('SELECT 1')).toBe(a);
    database.prepare('SELECT 3');

    expect(database.prepare('SELECT 1')).toBe(a);
    expect(prepared()).toBe(3);
    database.prepare('SELECT 2');
    expect(prepared()).toBe(4);
  });

  it('prepares a new statement while the cached one is still iterating', () => {
    const { database } = cachedDatabase();
    const sql = 'SELECT value FROM json_each(?)';
    const iterating = database.prepare(sql);
    const rows = iterating.iterate(['[1,2,3]']);
    rows.next();

    const other = database.prepare(sql);
    expect(other).not.toBe(iterating);
    expect(other.all(['[4]'])).toEqual([{ value: 4 }]);
    expect([...rows]).toEqual([{ value: 2 }, { value: 3 }]);
  });

  it('closes the database with it', () => {
    const { raw, database } = cachedDatabase();
    database.prepare('SELECT 1');
    database.close();
    expect(raw.open).toBe(false);
  });
});
