/** Creates the course-compatible `keys` table, or adopts one that another server already made. */
import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// Migrations take `Kysely<unknown>`: they must not depend on today's Database type, which
// describes the schema after the last migration, not at this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  const types = columnTypes(db);
  await db.schema
    .createTable('keys')
    .ifNotExists()
    .addColumn('kid', 'integer', types.autoIncrementKey)
    .addColumn('key', types.bytes, (column) => column.notNull())
    .addColumn('exp', types.unixTime, (column) => column.notNull())
    .execute();
  // Finding the unexpired keys must not scan every expired key ever made.
  await db.schema.createIndex('keys_exp').ifNotExists().on('keys').column('exp').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('keys_exp').ifExists().execute();
  await db.schema.dropTable('keys').ifExists().execute();
}
