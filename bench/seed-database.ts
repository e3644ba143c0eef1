/** Prepares the benchmark's databases: the OAuth client the token endpoint is measured with, and the large database's rows. */
import { openDatabase } from '../src/database/connection.js';
import { createClientStore } from '../src/oauth/client-store.js';
import { hashPassword } from '../src/users/passwords.js';
import { EXPIRED_KEYS, USERS } from './run-settings.js';

export interface BenchClient {
  clientId: string;
  secret: string;
}

/** Registers the client that asks POST /oauth/token for tokens, as the admin CLI would, and returns its secret. */
export async function registerBenchClient(databasePath: string): Promise<BenchClient> {
  const db = await openDatabase(databasePath, { mustExist: true });
  try {
    const clientId = 'bench';
    return { clientId, secret: await createClientStore(db).add(clientId, { scopes: ['read'] }) };
  } finally {
    await db.destroy();
  }
}

/** Adds 100,000 expired keys (with lifecycles, older than every real one) and 1,000 users. */
export async function seedLargeDatabase(databasePath: string): Promise<void> {
  const db = await openDatabase(databasePath, { mustExist: true });
  try {
    const template = await db.selectFrom('keys').select('key').limit(1).executeTakeFirstOrThrow();
    const passwordHash = await hashPassword('benchmark-password');
    const longAgo = Math.floor(Date.now() / 1000) - 30 * 24 * 3600;
    await db.transaction().execute(async (transaction) => {
      for (let first = 0; first < EXPIRED_KEYS; first += 500) {
        const exps = Array.from({ length: 500 }, (_, index) => longAgo - first - index);
        const rows = await transaction
          .insertInto('keys')
          .values(exps.map((exp) => ({ key: Buffer.from(template.key), exp })))
          .returning(['kid', 'exp'])
          .execute();
        await transaction
          .insertInto('key_lifecycle')
          .values(rows.map(({ kid, exp }) => ({ kid, alg: 'RS256', published_at: exp - 4500, activates_at: exp - 4500, retires_at: exp - 900 })))
          .execute();
      }
      for (let first = 0; first < USERS; first += 200) {
        const users = Array.from({ length: 200 }, (_, index) => `testor_${String(first + index).padStart(8, '0')}`);
        await transaction
          .insertInto('users')
          .values(users.map((username) => ({ username, email: `${username}@test.com`, password_hash: passwordHash })))
          .execute();
      }
    });
  } finally {
    await db.destroy();
  }
}
