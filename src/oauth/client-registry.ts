/**
 * Every client that may authenticate: those registered in code (plugin options), then those in
 * the database. Authentication costs one SHA-256 and one constant-time comparison.
 */
import { InvalidClientSettingsError, validateClient, type ClientSettings, type OAuthClient } from './clients.js';
import { ClientAuthenticationError, type ClientCredentials } from './client-authentication.js';
import { generateClientSecret, secretDigest, secretMatches } from './client-secrets.js';
import type { ClientStore, StoredClient } from './client-store.js';

/** A client registered in code. Its secret is the host's to keep; it must be long enough not to be guessed. */
export interface RegisteredClient extends ClientSettings {
  clientId: string;
  clientSecret: string;
}

/** As long as the secrets the server generates (256 bits in base64url). */
export const MIN_REGISTERED_SECRET_LENGTH = 43;

export interface ClientRegistry {
  /** The client the credentials prove; throws {@link ClientAuthenticationError} for any other outcome. */
  authenticate(credentials: ClientCredentials): Promise<OAuthClient>;
  /** Whether the client exists and has not been removed. */
  isActive(clientId: string): Promise<boolean>;
  /** Whether some client, in code or in the database, removed or not, has this id in any case. */
  isTaken(clientId: string): Promise<boolean>;
  /** Every scope some active client may ask for, sorted. */
  scopesInUse(): Promise<string[]>;
}

const WRONG_CLIENT_CREDENTIALS = 'Unknown client, or wrong client secret';

function registeredInCode(clients: readonly RegisteredClient[]): Map<string, StoredClient> {
  const byId = new Map<string, StoredClient>();
  for (const { clientId, clientSecret, ...settings } of clients) {
    const client = validateClient(clientId, settings);
    if (clientSecret.length < MIN_REGISTERED_SECRET_LENGTH) {
      throw new InvalidClientSettingsError(`the secret of client ${clientId} must be at least ${String(MIN_REGISTERED_SECRET_LENGTH)} characters of a random string`);
    }
    if (byId.has(clientId)) throw new InvalidClientSettingsError(`client ${clientId} is registered twice`);
    byId.set(clientId, { client, secretDigest: secretDigest(clientSecret) });
  }
  return byId;
}

export function createClientRegistry({ store, registeredClients = [] }: { store: ClientStore; registeredClients?: readonly RegisteredClient[] | undefined }): ClientRegistry {
  const inCode = registeredInCode(registeredClients);
  const scopesInCode = [...inCode.values()].flatMap(({ client }) => client.scopes);
  // Compared against when the client is unknown, so that an unknown id costs what a wrong secret costs.
  const decoyDigest = secretDigest(generateClientSecret());
  const find = async (clientId: string) => inCode.get(clientId) ?? (await store.findActive(clientId));
  return {
    async authenticate(credentials) {
      const found = await find(credentials.clientId);
      const matches = secretMatches(found?.secretDigest ?? decoyDigest, credentials.clientSecret);
      if (found === undefined || !matches) throw new ClientAuthenticationError(WRONG_CLIENT_CREDENTIALS, credentials.method === 'client_secret_basic');
      return found.client;
    },

    async isActive(clientId) {
      return (await find(clientId)) !== undefined;
    },

    async isTaken(clientId) {
      const lowerCase = clientId.toLowerCase();
      return [...inCode.keys()].some((id) => id.toLowerCase() === lowerCase) || (await store.isTaken(clientId));
    },

    async scopesInUse() {
      return [...new Set([...scopesInCode, ...(await store.scopesInUse())])].sort();
    },
  };
}
