/**
 * Creates `oauth_clients`, the clients that may ask `POST /oauth/token` for access tokens, and
 * `oauth_revocations`, the ids of access tokens revoked before their expiry.
 */
import { sql, type Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const types = columnTypes(db);
  await db.schema
    .createTable('oauth_clients')
    .addColumn('client_id', 'text', (column) => column.primaryKey())
    // The SHA-256 digest of the secret: secrets are 256 random bits, so a slow hash adds nothing.
    .addColumn('secret_digest', types.bytes, (column) => column.notNull())
    .addColumn('scopes', 'text', (column) => column.notNull().defaultTo(''))
    .addColumn('grant_types', 'text', (column) => column.notNull())
    .addColumn('audience', 'text')
    .addColumn('extra_claims', 'text')
    .addColumn('created_at', types.timestamp, (column) => column.notNull().defaultTo(sql`CURRENT_TIMESTAMP`))
    .addColumn('disabled_at', types.timestamp)
    .execute();
  await db.schema
    .createTable('oauth_revocations')
    .addColumn('jti', 'text', (column) => column.primaryKey())
    .addColumn('exp', types.unixTime, (column) => column.notNull())
    .execute();
  // Pruning the revocations of expired tokens must not scan the others.
  await db.schema.createIndex('oauth_revocations_exp').on('oauth_revocations').column('exp').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('oauth_revocations').execute();
  await db.schema.dropTable('oauth_clients').execute();
}
