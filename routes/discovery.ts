/**
 * GET /.well-known/openid-configuration (OpenID Connect Discovery 1.0) and
 * GET /.well-known/oauth-authorization-server (RFC 8414): where the keys and the token endpoint are.
 */
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { cachedDocument, type CachedDocument } from '../src/keys/cached-document.js';
import { sendPublicDocument } from './http.js';
import { discoveryResponse, errorResponses, notModifiedResponse } from './schemas.js';
import { PUBLIC_DOCUMENT_CONFIG, type WellKnownRoutesOptions } from './well-known-settings.js';

export const OPENID_CONFIGURATION_PATH = '/openid-configuration';
export const AUTHORIZATION_SERVER_METADATA_PATH = '/oauth-authorization-server';

interface DiscoverySettings {
  issuer: string;
  audience: string | undefined;
  algorithms: readonly string[];
}

function discoveryDocument({ issuer, audience, algorithms }: DiscoverySettings, baseUrl: string): CachedDocument {
  return cachedDocument({
    issuer,
    jwks_uri: `${baseUrl}/.well-known/jwks.json`,
    token_endpoint: `${baseUrl}/auth`,
    // Both specifications require this member; there is no authorization endpoint, so no
    // response type is supported, and the truthful list is empty.
    response_types_supported: [],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algorithms,
    claims_supported: ['iss', 'sub', ...(audience === undefined ? [] : ['aud']), 'iat', 'exp', 'amr'],
  });
}

/** The issuer as a base for endpoint URLs, when it is an http(s) URL; a plugin's default issuer is not. */
function issuerBaseUrl(issuer: string): string | undefined {
  const url = URL.parse(issuer);
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) return undefined;
  return url.href.replace(/\/$/, '');
}

export const discoveryRoutes: FastifyPluginCallback<WellKnownRoutesOptions> = (app, { maxAgeSeconds, issuer, audience }, done) => {
  const settings = { issuer, audience, algorithms: app.keyring.algorithms };
  const base = issuerBaseUrl(issuer);
  const fixedDocument = base === undefined ? undefined : discoveryDocument(settings, base);
  // Without a URL for an issuer, endpoints are named from the address the client used.
  const documentFor = (request: FastifyRequest) => fixedDocument ?? discoveryDocument(settings, `${request.protocol}://${request.host}`);
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
