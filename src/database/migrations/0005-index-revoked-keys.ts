/** Indexes the revoked keys, the few rows pruning looks for besides the long-expired ones. */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('key_lifecycle_revoked').on('key_lifecycle').column('revoked_at').where(sql.ref('revoked_at'), 'is not', null).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('key_lifecycle_revoked').execute();
}
