/** The Kysely description of every table; a renamed column breaks the build, not production. */
import type { ColumnType, Generated } from 'kysely';

/**
 * The course-compatible key table. External graders read it with `SELECT * FROM keys` and map
 * columns by position, so it holds exactly these three columns; anything else we learn about a
 * key belongs in a table of its own keyed by kid.
 */
export interface KeysTable {
  kid: Generated<number>;
  /**
   * The private key: PKCS#1 PEM, or that PEM sealed with AES-256-GCM when keys are encrypted at
   * rest. Databases written by other servers may hold the PEM as TEXT.
   */
  key: ColumnType<Buffer | string, Buffer, Buffer>;
  /** Expiry, in unix seconds. */
  exp: number;
}

/**
 * A moment the database wrote with CURRENT_TIMESTAMP: in SQLite, text `YYYY-MM-DD HH:MM:SS` in
 * UTC; in PostgreSQL, a TIMESTAMPTZ, which pg reads as a Date.
 */
export type DatabaseTimestamp = string | Date;

/** Read by graders with `SELECT *`, columns mapped by name: exactly these columns. */
export interface UsersTable {
  id: Generated<number>;
  username: string;
  /** An argon2id PHC string; never the password. */
  password_hash: string;
  email: string | null;
  date_registered: ColumnType<DatabaseTimestamp, never, never>;
  last_login: ColumnType<DatabaseTimestamp | null, never, DatabaseTimestamp | null>;
}

/** One row per successful `POST /auth`. Read by graders with `SELECT *`: exactly these columns. */
export interface AuthLogsTable {
  id: Generated<number>;
  request_ip: string;
  request_timestamp: ColumnType<DatabaseTimestamp, never, never>;
  /** NULL for a token issued to a subject that is not a registered user. */
  user_id: number | null;
}

/** Present (one row) exactly when the private keys in `keys` are encrypted. */
export interface KeyEncryptionTable {
  id: ColumnType<1, 1, never>;
  /** The KDF and its parameters, as JSON. */
  kdf: string;
  salt: Buffer;
  /** A known plaintext sealed with the derived key: opening it proves the secret right. */
  verifier: Buffer;
}

/** One row per key in `keys`: what it signs with and when it moves through its states (unix seconds). */
export interface KeyLifecycleTable {
  kid: number;
  alg: string;
  published_at: number;
  activates_at: number;
  retires_at: number;
  revoked_at: number | null;
}

/** One row; `version` goes up whenever `keys` or `key_lifecycle` changes (triggers, migration 0006). */
export interface KeyChangesTable {
  id: ColumnType<1, 1, never>;
  version: number;
}

/** A client of `POST /oauth/token` (RFC 6749 §2), registered by the admin CLI. */
export interface OAuthClientsTable {
  client_id: string;
  /** SHA-256 of the client secret; the secret itself is shown once and never stored. */
  secret_digest: Buffer;
  /** The scopes the client may ask for, space-separated (RFC 6749 §3.3). */
  scopes: string;
  /** The grant types the client may use, space-separated. */
  grant_types: string;
  /** The `aud` of its access tokens; null for the server's default. */
  audience: string | null;
  /** A JSON object of claims added to its access tokens; null for none. */
  extra_claims: string | null;
  created_at: ColumnType<DatabaseTimestamp, never, never>;
  /** Set when the client is removed: it no longer authenticates, and its id is never reused. */
  disabled_at: ColumnType<DatabaseTimestamp | null, never, DatabaseTimestamp | null>;
}

/** Access tokens revoked before their expiry (RFC 7009), by `jti`; a row is pruned once `exp` has passed. */
export interface OAuthRevocationsTable {
  jti: string;
  /** The token's own `exp`, in unix seconds. */
  exp: number;
}

export interface Database {
  keys: KeysTable;
  users: UsersTable;
  auth_logs: AuthLogsTable;
  key_encryption: KeyEncryptionTable;
  key_lifecycle: KeyLifecycleTable;
  key_changes: KeyChangesTable;
  oauth_clients: OAuthClientsTable;
  oauth_revocations: OAuthRevocationsTable;
}
