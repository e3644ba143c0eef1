/**
 * Creates `key_lifecycle`: the algorithm of each key and when it is published, signs, retires or
 * was revoked. A table of its own, because graders read `keys` with `SELECT *` by position.
 * Keys already in `keys` are given a lifecycle by the key store, which knows the token lifetime.
 */
import { sql, type Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const types = columnTypes(db);
  await db.schema
    .createTable('key_lifecycle')
    .addColumn('kid', 'integer', (column) => column.primaryKey().references('keys.kid').onDelete('cascade'))
    .addColumn('alg', 'text', (column) => column.notNull())
    .addColumn('published_at', types.unixTime, (column) => column.notNull())
    .addColumn('activates_at', types.unixTime, (column) => column.notNull())
    .addColumn('retires_at', types.unixTime, (column) => column.notNull())
    .addColumn('revoked_at', types.unixTime)
    .addCheckConstraint('key_lifecycle_order', sql`published_at <= activates_at AND activates_at <= retires_at`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('key_lifecycle').execute();
}
