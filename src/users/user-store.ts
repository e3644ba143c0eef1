/** The user repository: registered users and the log of successful authentications. */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../database/schema.js';
import { createGroupCommit } from '../database/group-commit.js';
import { comparableAsText } from '../database/text.js';
import { isoSecond } from '../database/timestamps.js';
import { errorCode } from '../common/error-code.js';

export interface User {
  id: number;
  username: string;
  email: string | null;
  passwordHash: string;
  /** ISO 8601, UTC, to the second. */
  dateRegistered: string;
  /** ISO 8601, UTC, to the second; null before the first successful `POST /auth`. */
  lastLogin: string | null;
}

export interface NewUser {
  username: string;
  email: string;
  passwordHash: string;
}

export interface SuccessfulAuth {
  requestIp: string;
  /** The registered user the token was issued to; null for any other subject. */
  userId: number | null;
}

/** The username or email is taken already: the client's fault. */
export class DuplicateUserError extends Error {
  override readonly name = 'DuplicateUserError';
  readonly code = 'ERR_JWKS_DUPLICATE_USER';
  readonly statusCode = 409;

  constructor(
    readonly field: 'username' | 'email',
    options?: ErrorOptions,
  ) {
    super(`That ${field} is already registered`, options);
  }
}

export interface UserStore {
  /** Creates the user and returns its id; throws {@link DuplicateUserError} for a taken username or email. */
  createUser(user: NewUser): Promise<number>;
  /** The user with this username, in any case (usernames are unique regardless of case). */
  findByUsername(username: string): Promise<User | undefined>;
  /**
   * Logs the authentication and, for a registered user, sets `last_login`; resolves once both are
   * committed. Authentications recorded together are committed together (a group commit).
   */
  recordSuccessfulAuth(auth: SuccessfulAuth): Promise<void>;
}

// PostgreSQL reports a unique violation by code and names the constraint; SQLite names the
// column (or the index) in its message.
const POSTGRES_UNIQUE_VIOLATION = '23505';

function duplicateFieldOf(error: unknown): 'username' | 'email' | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = errorCode(error);
  let culprit: string;
  if (code === POSTGRES_UNIQUE_VIOLATION && 'constraint' in error && typeof error.constraint === 'string') culprit = error.constraint;
  else if (code === 'SQLITE_CONSTRAINT_UNIQUE') culprit = error.message;
  else return undefined;
  if (/users[._]username/.test(culprit)) return 'username';
  if (/users[._]email/.test(culprit)) return 'email';
  return undefined;
}

/** Rows per group commit: more than a turn of the event loop brings under heavy load, few enough for any database's bound-parameter limit. */
const AUTH_LOG_BATCH_SIZE = 128;

/** One insert of every row, and one update of the registered users among them, in one transaction. */
async function commitAuthLog(db: Kysely<Database>, batch: readonly SuccessfulAuth[]): Promise<void> {
  const rows = batch.map(({ requestIp, userId }) => ({ request_ip: requestIp, user_id: userId }));
  const userIds = [...new Set(batch.flatMap(({ userId }) => (userId === null ? [] : [userId])))];
  // One statement needs no transaction of its own: the busiest path, tokens for non-users, stays at one write.
  if (userIds.length === 0) {
    await db.insertInto('auth_logs').values(rows).execute();
    return;
  }
  await db.transaction().execute(async (transaction) => {
    await transaction.insertInto('auth_logs').values(rows).execute();
    await transaction.updateTable('users').set({ last_login: sql<string>`CURRENT_TIMESTAMP` }).where('id', 'in', userIds).execute();
  });
}

export function createUserStore(db: Kysely<Database>): UserStore {
  const authLog = createGroupCommit<SuccessfulAuth>({ commit: (batch) => commitAuthLog(db, batch), maxBatchSize: AUTH_LOG_BATCH_SIZE });
  return {
    async createUser({ username, email, passwordHash }) {
      try {
        const { id } = await db
          .insertInto('users')
          .values({ username, email, password_hash: passwordHash })
          .returning('id')
          .executeTakeFirstOrThrow();
        return id;
      } catch (error) {
        const field = duplicateFieldOf(error);
        if (field !== undefined) throw new DuplicateUserError(field, { cause: error });
        throw error;
      }
    },

    async findByUsername(username) {
      if (!comparableAsText(username)) return undefined;
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where((eb) => eb(eb.fn('lower', ['username']), '=', eb.fn('lower', [eb.val(username)])))
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        id: row.id,
        username: row.username,
        email: row.email,
        passwordHash: row.password_hash,
        dateRegistered: isoSecond(row.date_registered),
        lastLogin: row.last_login === null ? null : isoSecond(row.last_login),
      };
    },

    recordSuccessfulAuth: (auth) => authLog.write(auth),
  };
}
