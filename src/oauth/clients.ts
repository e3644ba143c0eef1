/** What an OAuth client is, and the rules its registration must follow (no database here). */
import { REGISTERED_CLAIMS } from '../tokens/signer.js';
import { parseScope } from './scopes.js';

export const GRANT_TYPES = ['client_credentials', 'password'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [member: string]: JsonValue };
export type ExtraClaims = Readonly<Record<string, JsonValue>>;

export interface ClientSettings {
  /** The scopes the client may ask for. Default: none. */
  scopes?: readonly string[] | undefined;
  /** The grants it may use. Default: `client_credentials`. */
  grantTypes?: readonly GrantType[] | undefined;
  /** The `aud` of its access tokens. Default: the server's audience, else its issuer. */
  audience?: string | undefined;
  /** Claims added to its access tokens; they never replace the registered ones. */
  extraClaims?: ExtraClaims | undefined;
}

/** A client as the token endpoint and the CLI see it; never its secret. */
export interface OAuthClient {
  clientId: string;
  scopes: readonly string[];
  grantTypes: readonly GrantType[];
  audience: string | undefined;
  extraClaims: ExtraClaims;
}

/** A client id, scope, audience or claim set that cannot be registered, and why. */
export class InvalidClientSettingsError extends Error {
  override readonly name = 'InvalidClientSettingsError';
  readonly code = 'ERR_JWKS_INVALID_CLIENT_SETTINGS';
}

// URL-unreserved characters only (RFC 3986 §2.3): an id never needs encoding, in a URL or in
// the form encoding of HTTP Basic (RFC 6749 §2.3.1).
const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;
const MAX_AUDIENCE_LENGTH = 2048;
const MAX_EXTRA_CLAIMS_BYTES = 4096;

export function validateClientId(clientId: string): string {
  if (!CLIENT_ID.test(clientId)) {
    throw new InvalidClientSettingsError(`a client id is 1 to 128 letters, digits, ".", "_", "~" or "-" (got ${JSON.stringify(clientId)})`);
  }
  return clientId;
}

function validateAudience(audience: string | undefined): string | undefined {
  if (audience === undefined) return undefined;
  // RFC 7519 §2: a StringOrURI that holds a colon must be a URI.
  const valid = audience !== '' && audience.length <= MAX_AUDIENCE_LENGTH && !/[\s\p{Cc}]/u.test(audience) && (!audience.includes(':') || URL.canParse(audience));
  if (!valid) throw new InvalidClientSettingsError(`an audience is a URI or a string without spaces, up to ${String(MAX_AUDIENCE_LENGTH)} characters (got ${JSON.stringify(audience)})`);
  return audience;
}

// Unknown: they come from JSON typed on a command line, or from JavaScript callers.
function validateExtraClaims(claims: unknown): ExtraClaims {
  if (claims === undefined) return {};
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new InvalidClientSettingsError('extra claims must be a JSON object');
  const reserved = Object.keys(claims).filter((name) => REGISTERED_CLAIMS.includes(name));
  if (reserved.length > 0) throw new InvalidClientSettingsError(`extra claims must not set the registered claims ${reserved.join(', ')}`);
  if (Buffer.byteLength(JSON.stringify(claims)) > MAX_EXTRA_CLAIMS_BYTES) throw new InvalidClientSettingsError(`extra claims must take at most ${String(MAX_EXTRA_CLAIMS_BYTES)} bytes as JSON`);
  return claims as ExtraClaims;
}

function validateGrantTypes(grantTypes: readonly string[] | undefined): GrantType[] {
  if (grantTypes === undefined) return ['client_credentials'];
  const unknown = grantTypes.filter((grant) => !GRANT_TYPES.some((known) => known === grant));
  if (unknown.length > 0 || grantTypes.length === 0) throw new InvalidClientSettingsError(`grant types are one or more of ${GRANT_TYPES.join(', ')} (got ${JSON.stringify(grantTypes.join(' '))})`);
  return GRANT_TYPES.filter((grant) => grantTypes.includes(grant));
}

/** The settings, checked and put in their stored form; throws {@link InvalidClientSettingsError}. */
export function validateClient(clientId: string, settings: ClientSettings): OAuthClient {
  let scopes: string[];
  try {
    scopes = parseScope((settings.scopes ?? []).join(' '));
  } catch (error) {
    throw new InvalidClientSettingsError(error instanceof Error ? error.message : String(error));
  }
  return {
    clientId: validateClientId(clientId),
    scopes,
    grantTypes: validateGrantTypes(settings.grantTypes),
    audience: validateAudience(settings.audience),
    extraClaims: validateExtraClaims(settings.extraClaims),
  };
}
