/**
 * Revoked access tokens (RFC 7009), by `jti`, kept until the token would have expired anyway.
 * Every check reads the database, so a revocation made through one instance holds on all of
 * them at once.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../database/schema.js';

export interface RevocationStore {
  /** Records the revocation (again is harmless) and drops those of tokens expired by `now`. */
  revoke(jti: string, exp: number, now: number): Promise<void>;
  isRevoked(jti: string): Promise<boolean>;
}

export function createRevocationStore(db: Kysely<Database>): RevocationStore {
  return {
    async revoke(jti, exp, now) {
      await db.transaction().execute(async (transaction) => {
        await transaction.deleteFrom('oauth_revocations').where('exp', '<', now).execute();
        await transaction
          .insertInto('oauth_revocations')
          .values({ jti, exp })
          .onConflict((conflict) => conflict.column('jti').doNothing())
          .execute();
      });
    },

    async isRevoked(jti) {
      const row = await db.selectFrom('oauth_revocations').select('jti').where('jti', '=', jti).executeTakeFirst();
      return row !== undefined;
    },
  };
}
