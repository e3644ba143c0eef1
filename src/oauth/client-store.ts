/** The OAuth client repository: registration, secrets (as digests only) and removal. */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, OAuthClientsTable } from '../database/schema.js';
import { comparableAsText } from '../database/text.js';
import { isoSecond } from '../database/timestamps.js';
import { GRANT_TYPES, validateClient, type ClientSettings, type ExtraClaims, type OAuthClient } from './clients.js';
import { generateClientSecret, secretDigest } from './client-secrets.js';
import { formatScope, parseScope } from './scopes.js';

/** A client and the digest its secret is checked against. */
export interface StoredClient {
  client: OAuthClient;
  secretDigest: Buffer;
}

/** A client as the CLI lists it. */
export interface ClientRecord extends OAuthClient {
  /** ISO 8601, UTC, to the second. */
  createdAt: string;
  /** When it was removed; null while it may authenticate. */
  disabledAt: string | null;
}

/** The client id is registered already, or was and has been removed: ids are never reused. */
export class DuplicateClientError extends Error {
  override readonly name = 'DuplicateClientError';
  readonly code = 'ERR_JWKS_DUPLICATE_CLIENT';
  readonly statusCode = 409;
}

export type ClientRemoval = 'removed' | 'already-removed' | 'not-found';

export interface ClientStore {
  /** Registers the client and returns its new secret, the only time it is seen. */
  add(clientId: string, settings: ClientSettings): Promise<string>;
  /** The client with this id, unless there is none or it was removed. */
  findActive(clientId: string): Promise<StoredClient | undefined>;
  /** Every client, removed ones too, by id. */
  list(): Promise<ClientRecord[]>;
  /** A new secret for the client, replacing the old one at once; undefined when there is no such client. */
  rotateSecret(clientId: string): Promise<string | undefined>;
  /** Disables the client for good: it no longer authenticates, and its id stays taken. */
  remove(clientId: string): Promise<ClientRemoval>;
  /** Every scope some client that is not removed may ask for. */
  scopesInUse(): Promise<string[]>;
  /** Whether a client, removed or not, has this id in any case. */
  isTaken(clientId: string): Promise<boolean>;
}

function clientOf(row: Selectable<OAuthClientsTable>): OAuthClient {
  return {
    clientId: row.client_id,
    scopes: parseScope(row.scopes),
    grantTypes: GRANT_TYPES.filter((grant) => row.grant_types.split(' ').includes(grant)),
    audience: row.audience ?? undefined,
    extraClaims: row.extra_claims === null ? {} : (JSON.parse(row.extra_claims) as ExtraClaims),
  };
}

export function createClientStore(db: Kysely<Database>): ClientStore {
  return {
    async add(clientId, settings) {
      const client = validateClient(clientId, settings);
      // A client's own tokens name it in `sub`, as password-grant tokens name their user: the two
      // must not be told apart by `sub` alone (RFC 9068 §5).
      const user = await db.selectFrom('users').select('id').where((eb) => eb(eb.fn('lower', ['username']), '=', clientId.toLowerCase())).executeTakeFirst();
      if (user !== undefined) throw new DuplicateClientError(`The client id ${JSON.stringify(clientId)} is a registered user's name`);
      const secret = generateClientSecret();
      // The primary key decides duplicates, among concurrent registrations too.
      const { numInsertedOrUpdatedRows } = await db
        .insertInto('oauth_clients')
        .values({
          client_id: client.clientId,
          secret_digest: secretDigest(secret),
          scopes: formatScope(client.scopes),
          grant_types: client.grantTypes.join(' '),
          audience: client.audience ?? null,
          extra_claims: Object.keys(client.extraClaims).length === 0 ? null : JSON.stringify(client.extraClaims),
        })
        .onConflict((conflict) => conflict.column('client_id').doNothing())
        .executeTakeFirstOrThrow();
      if (numInsertedOrUpdatedRows === 0n) throw new DuplicateClientError(`The client id ${JSON.stringify(clientId)} is taken (ids of removed clients are never reused)`);
      return secret;
    },

    async findActive(clientId) {
      if (!comparableAsText(clientId)) return undefined;
      const row = await db.selectFrom('oauth_clients').selectAll().where('client_id', '=', clientId).where('disabled_at', 'is', null).executeTakeFirst();
      return row === undefined ? undefined : { client: clientOf(row), secretDigest: row.secret_digest };
    },

    async list() {
      const rows = await db.selectFrom('oauth_clients').selectAll().orderBy('client_id').execute();
      return rows.map((row) => ({ ...clientOf(row), createdAt: isoSecond(row.created_at), disabledAt: row.disabled_at === null ? null : isoSecond(row.disabled_at) }));
    },

    async rotateSecret(clientId) {
      const secret = generateClientSecret();
      const { numUpdatedRows } = await db
        .updateTable('oauth_clients')
        .set({ secret_digest: secretDigest(secret) })
        .where('client_id', '=', clientId)
        .where('disabled_at', 'is', null)
        .executeTakeFirstOrThrow();
      return numUpdatedRows === 0n ? undefined : secret;
    },

    async remove(clientId) {
      const { numUpdatedRows } = await db
        .updateTable('oauth_clients')
        .set({ disabled_at: sql<string>`CURRENT_TIMESTAMP` })
        .where('client_id', '=', clientId)
        .where('disabled_at', 'is', null)
        .executeTakeFirstOrThrow();
      if (numUpdatedRows > 0n) return 'removed';
      const existing = await db.selectFrom('oauth_clients').select('client_id').where('client_id', '=', clientId).executeTakeFirst();
      return existing === undefined ? 'not-found' : 'already-removed';
    },

    async isTaken(clientId) {
      if (!comparableAsText(clientId)) return false;
      const row = await db.selectFrom('oauth_clients').select('client_id').where((eb) => eb(eb.fn('lower', ['client_id']), '=', clientId.toLowerCase())).executeTakeFirst();
      return row !== undefined;
    },

    async scopesInUse() {
      const rows = await db.selectFrom('oauth_clients').select('scopes').where('disabled_at', 'is', null).execute();
      return [...new Set(rows.flatMap((row) => parseScope(row.scopes)))].sort();
    },
  };
}
