/**
 * Creates `key_encryption`, the single row that says the private keys in `keys` are encrypted:
 * the KDF's salt and parameters, and a verifier that tells a wrong secret from a right one.
 */
import { sql, type Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const types = columnTypes(db);
  await db.schema
    .createTable('key_encryption')
    .addColumn('id', 'integer', (column) => column.primaryKey().check(sql`id = 1`))
    .addColumn('kdf', 'text', (column) => column.notNull())
    .addColumn('salt', types.bytes, (column) => column.notNull())
    .addColumn('verifier', types.bytes, (column) => column.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('key_encryption').execute();
}
