/**
 * GET /.well-known/openid-configuration (OpenID Connect Discovery 1.0) and
 * GET /.well-known/oauth-authorization-server (RFC 8414): where the keys and the OAuth endpoints
 * are, and what they take. OAuth clients follow this document literally.
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify';
import { cachedDocument, type CachedDocument } from '../src/keys/cached-document.js';
import { CLIENT_AUTHENTICATION_METHODS } from '../src/oauth/client-authentication.js';
import { sendPublicDocument } from './http.js';
import { INTROSPECTION_PATH, REVOCATION_PATH, TOKEN_PATH } from './oauth.js';
import { discoveryResponse, errorResponses, notModifiedResponse } from './schemas.js';
import { PUBLIC_DOCUMENT_CONFIG, type WellKnownRoutesOptions } from './well-known-settings.js';

export const OPENID_CONFIGURATION_PATH = '/openid-configuration';
export const AUTHORIZATION_SERVER_METADATA_PATH = '/oauth-authorization-server';

/** The clients' scopes are re-read at most this often, and only while discovery is asked for. */
export const SCOPES_REFRESH_MS = 1000;

interface DiscoverySettings {
  issuer: string;
  algorithms: readonly string[];
  grantTypes: readonly string[];
}

function discoveryDocument({ issuer, algorithms, grantTypes }: DiscoverySettings, baseUrl: string, scopes: readonly string[]): CachedDocument {
  return cachedDocument({
    issuer,
    jwks_uri: `${baseUrl}/.well-known/jwks.json`,
    token_endpoint: `${baseUrl}${TOKEN_PATH}`,
    grant_types_supported: grantTypes,
    token_endpoint_auth_methods_supported: CLIENT_AUTHENTICATION_METHODS,
    introspection_endpoint: `${baseUrl}${INTROSPECTION_PATH}`,
    introspection_endpoint_auth_methods_supported: CLIENT_AUTHENTICATION_METHODS,
    revocation_endpoint: `${baseUrl}${REVOCATION_PATH}`,
    revocation_endpoint_auth_methods_supported: CLIENT_AUTHENTICATION_METHODS,
    scopes_supported: scopes,
    // Both specifications require this member; there is no authorization endpoint, so no
    // response type is supported, and the truthful list is empty.
    response_types_supported: [],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algorithms,
    claims_supported: ['iss', 'sub', 'aud', 'iat', 'exp', 'amr', 'client_id', 'scope', 'jti'],
  });
}

/**
 * The scopes some client may ask for, as last read. The admin CLI registers clients from another
 * process, so they are read again when a request finds them older than {@link SCOPES_REFRESH_MS};
 * that request, and any during the read, get the list as it was: discovery never waits on the database.
 */
function scopesOfClients(app: FastifyInstance): () => readonly string[] {
  let scopes: readonly string[] = [];
  let readAt = Number.NEGATIVE_INFINITY;
  let reading: Promise<void> | undefined;
  const read = () => {
    readAt = performance.now();
    reading ??= app.clientRegistry
      .scopesInUse()
      .then((current) => {
        scopes = current;
      })
      .catch((error: unknown) => {
        if (!app.databaseOutage.failedIfUnavailable(error, 'discovery')) app.log.warn({ err: error }, 'could not read the clients\' scopes; discovery lists them as last read');
      })
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
  app.addHook('onReady', read);
  return () => {
    if (performance.now() - readAt > SCOPES_REFRESH_MS) void read();
    return scopes;
  };
}

/** The issuer as a base for endpoint URLs, when it is an http(s) URL; a plugin's default issuer is not. */
function issuerBaseUrl(issuer: string): string | undefined {
  const url = URL.parse(issuer);
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) return undefined;
  return url.href.replace(/\/$/, '');
}

export const discoveryRoutes: FastifyPluginCallback<WellKnownRoutesOptions> = (app, { maxAgeSeconds, issuer }, done) => {
  const settings = { issuer, algorithms: app.keyring.algorithms, grantTypes: app.oauthServer.grantTypes };
  const issuerBase = issuerBaseUrl(issuer);
  const currentScopes = scopesOfClients(app);
  let last: { base: string; scopes: readonly string[]; document: CachedDocument } | undefined;
  // Built again only when the scopes change or (when the issuer is not a URL, so endpoints are
  // named from the address the client used) the address does.
  const documentFor = (request: FastifyRequest) => {
    const base = issuerBase ?? `${request.protocol}://${request.host}`;
    const scopes = currentScopes();
    if (last?.base !== base || last.scopes !== scopes) last = { base, scopes, document: discoveryDocument(settings, base, scopes) };
    return last.document;
  };
  const schema = {
    summary: 'Discovery metadata: the issuer, its JWKS and token endpoint',
    description: 'One document answers both OpenID Connect Discovery 1.0 and RFC 8414. Cacheable, readable from any origin.',
    tags: ['discovery'],
    response: { 200: { description: 'The metadata document.', ...discoveryResponse }, 304: notModifiedResponse, ...errorResponses },
  };
  for (const path of [OPENID_CONFIGURATION_PATH, AUTHORIZATION_SERVER_METADATA_PATH]) {
    app.get(path, { schema, config: PUBLIC_DOCUMENT_CONFIG }, (request, reply) => sendPublicDocument(request, reply, documentFor(request), maxAgeSeconds));
  }
  done();
};
