/**
 * Creates `key_changes`, one row whose `version` goes up with every change to `keys` or
 * `key_lifecycle`, made by triggers so that no writer can forget it: a server polls it to learn,
 * with one cheap read, that another process (an instance, the admin CLI) changed the keys.
 */
import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../dialect.js';
import { columnTypes } from './column-types.js';

const WATCHED_TABLES = ['keys', 'key_lifecycle'] as const;
const SQLITE_EVENTS = ['insert', 'update', 'delete'] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('key_changes')
    .addColumn('id', 'integer', (column) => column.primaryKey().check(sql`id = 1`))
    .addColumn('version', columnTypes(db).unixTime, (column) => column.notNull())
    .execute();
  await sql`INSERT INTO key_changes (id, version) VALUES (1, 0)`.execute(db);
  if (dialectOf(db) === 'postgres') {
    // Once per statement, not per row: pruning deletes keys by the hundred.
    await sql`CREATE FUNCTION count_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE key_changes SET version = version + 1;
        RETURN NULL;
      END
    $$`.execute(db);
    for (const table of WATCHED_TABLES) {
      await sql`CREATE TRIGGER ${sql.id(`${table}_count_changes`)} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${sql.table(table)}
        FOR EACH STATEMENT EXECUTE FUNCTION count_key_change()`.execute(db);
    }
    return;
  }
  // SQLite has row triggers only, one per event.
  for (const table of WATCHED_TABLES) {
    for (const event of SQLITE_EVENTS) {
      await sql`CREATE TRIGGER ${sql.id(`${table}_count_${event}`)} AFTER ${sql.raw(event.toUpperCase())} ON ${sql.table(table)}
        BEGIN UPDATE key_changes SET version = version + 1; END`.execute(db);
    }
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') {
    for (const table of WATCHED_TABLES) await sql`DROP TRIGGER ${sql.id(`${table}_count_changes`)} ON ${sql.table(table)}`.execute(db);
    await sql`DROP FUNCTION count_key_change()`.execute(db);
  } else {
    for (const table of WATCHED_TABLES) {
      for (const event of SQLITE_EVENTS) await sql`DROP TRIGGER ${sql.id(`${table}_count_${event}`)}`.execute(db);
    }
  }
  await db.schema.dropTable('key_changes').execute();
}
