/** JSON schemas of every request and response; Fastify validates and serializes with them. */
import { SIGNING_ALGORITHMS } from '../src/keys/algorithms.js';
import { MAX_PASSWORD_LENGTH, MAX_USERNAME_LENGTH } from '../src/users/basic-credentials.js';

export const errorResponse = {
  $id: 'jwksErrorResponse',
  type: 'object',
  required: ['statusCode', 'error', 'message'],
  additionalProperties: false,
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

/** An error response in the JSON error shape, with what it means for the OpenAPI document. */
export function describedError(description: string) {
  return { description, $ref: 'jwksErrorResponse#' } as const;
}

/** The error responses every route can give, besides those it lists itself. */
export const errorResponses = {
  '4xx': describedError('The request was refused; `message` says why.'),
  '5xx': describedError('The server failed; the details are in its log, never in the response. 503, with Retry-After: the database is unavailable for now.'),
} as const;

/** The 304 of the cacheable documents: the client's copy, named by If-None-Match, is current. */
export const notModifiedResponse = { description: 'Not modified: the ETag in If-None-Match is current.', type: 'null' } as const;

// A bare `?expired` counts as set, as it does for the course servers; the capitalised spellings
// are what Python and other clients send for a boolean.
export const EXPIRED_FLAG_SET = ['', 'true', 'True', 'TRUE', '1'];
const EXPIRED_FLAG_UNSET = ['false', 'False', 'FALSE', '0'];

/** The query of `POST /auth`; `alg` must name one of the algorithms the server signs with. */
export function authQuery(algorithms: readonly string[]) {
  return {
    type: 'object',
    properties: {
      expired: { type: 'string', enum: [...EXPIRED_FLAG_SET, ...EXPIRED_FLAG_UNSET] },
      alg: { type: 'string', enum: [...algorithms] },
    },
  } as const;
}

export const authBody = {
  type: 'object',
  properties: {
    username: { type: 'string', minLength: 1, maxLength: MAX_USERNAME_LENGTH },
    password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH },
  },
} as const;

export const registrationBody = {
  type: 'object',
  required: ['username', 'email'],
  properties: {
    // Letters, digits, underscore, dot and hyphen; no leading dot or hyphen.
    username: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{2,63}$' },
    email: { type: 'string', format: 'email', maxLength: 254 },
  },
} as const;

export const registrationResponse = {
  type: 'object',
  required: ['password'],
  additionalProperties: false,
  properties: {
    password: { type: 'string', format: 'uuid' },
  },
} as const;

export const userProfileResponse = {
  type: 'object',
  required: ['username', 'email', 'date_registered', 'last_login'],
  additionalProperties: false,
  properties: {
    username: { type: 'string' },
    email: { type: ['string', 'null'] },
    date_registered: { type: 'string', format: 'date-time' },
    last_login: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

export const tokenResponse = {
  type: 'object',
  required: ['token'],
  additionalProperties: false,
  properties: {
    token: { type: 'string' },
  },
} as const;

// The key endpoints send bodies serialized once per key set, built member by member from the
// public key (src/keys/public-jwk.ts); these schemas describe them, and list every member there is.
const publicJwk = {
  type: 'object',
  required: ['kty', 'kid', 'use', 'alg'],
  additionalProperties: false,
  properties: {
    kty: { type: 'string', enum: ['RSA', 'EC', 'OKP'] },
    kid: { type: 'string' },
    use: { type: 'string', enum: ['sig'] },
    alg: { type: 'string', enum: [...SIGNING_ALGORITHMS] },
    n: { type: 'string' },
    e: { type: 'string' },
    crv: { type: 'string', enum: ['P-256', 'P-384', 'Ed25519'] },
    x: { type: 'string' },
    y: { type: 'string' },
  },
} as const;

export const jwksResponse = {
  type: 'object',
  required: ['keys'],
  additionalProperties: false,
  properties: {
    keys: { type: 'array', items: publicJwk },
  },
} as const;

const stringList = { type: 'array', items: { type: 'string' } } as const;

/** OpenID Connect Discovery 1.0 §3 and RFC 8414 §2: one document answers both. */
export const discoveryResponse = {
  type: 'object',
  required: [
    'issuer',
    'jwks_uri',
    'token_endpoint',
    'grant_types_supported',
    'token_endpoint_auth_methods_supported',
    'introspection_endpoint',
    'revocation_endpoint',
    'scopes_supported',
    'response_types_supported',
    'subject_types_supported',
    'id_token_signing_alg_values_supported',
  ],
  additionalProperties: false,
  properties: {
    issuer: { type: 'string' },
    jwks_uri: { type: 'string', format: 'uri' },
    token_endpoint: { type: 'string', format: 'uri' },
    grant_types_supported: stringList,
    token_endpoint_auth_methods_supported: stringList,
    introspection_endpoint: { type: 'string', format: 'uri' },
    introspection_endpoint_auth_methods_supported: stringList,
    revocation_endpoint: { type: 'string', format: 'uri' },
    revocation_endpoint_auth_methods_supported: stringList,
    scopes_supported: stringList,
    response_types_supported: stringList,
    subject_types_supported: stringList,
    id_token_signing_alg_values_supported: stringList,
    claims_supported: stringList,
  },
} as const;

export const healthResponse = {
  type: 'object',
  required: ['status'],
  additionalProperties: false,
  properties: { status: { type: 'string', enum: ['ok'] } },
} as const;

export const readinessResponse = {
  type: 'object',
  required: ['status', 'algorithms'],
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['ready'] },
    algorithms: { type: 'array', items: { type: 'string' } },
  },
} as const;

/**
 * The errors of the OAuth endpoints: RFC 6749 §5.2's `error` and `error_description`, with the
 * `statusCode` and `message` every other error of the service has.
 */
export const oauthErrorResponse = {
  $id: 'oauthErrorResponse',
  type: 'object',
  required: ['statusCode', 'error', 'error_description', 'message'],
  additionalProperties: false,
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string', enum: ['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'unsupported_token_type', 'server_error'] },
    error_description: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

export function describedOAuthError(description: string) {
  return { description, $ref: 'oauthErrorResponse#' } as const;
}

export const oauthErrorResponses = {
  400: describedOAuthError('The request is malformed (`invalid_request`), or refused: see `error`.'),
  401: describedOAuthError('`invalid_client`: unknown client or wrong secret; with `WWW-Authenticate` when HTTP Basic was used.'),
  413: describedOAuthError('The body is over 8 KiB.'),
  415: describedOAuthError('The body is not `application/x-www-form-urlencoded`.'),
  '4xx': describedOAuthError('The request was refused; `error` and `error_description` say why.'),
  '5xx': describedOAuthError('The server failed (`server_error`); the details are in its log, never in the response.'),
} as const;

const oauthParameter = { type: 'string', maxLength: 4096 } as const;

/** The client authentication parameters of `client_secret_post` (RFC 6749 §2.3.1). */
const clientCredentialParameters = {
  client_id: { type: 'string', maxLength: 128, description: 'With client_secret_post; or omit both and use HTTP Basic.' },
  client_secret: { type: 'string', maxLength: 1024 },
} as const;

export const tokenRequestBody = {
  type: 'object',
  properties: {
    grant_type: { type: 'string', maxLength: 64, examples: ['client_credentials', 'password'] },
    scope: { ...oauthParameter, description: 'Space-separated; a subset of the client\'s scopes. Omitted: all of them.' },
    username: { type: 'string', maxLength: MAX_USERNAME_LENGTH, description: 'The password grant only.' },
    password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH, description: 'The password grant only.' },
    ...clientCredentialParameters,
  },
} as const;

/** RFC 6749 §5.1. */
export const accessTokenResponse = {
  type: 'object',
  required: ['access_token', 'token_type', 'expires_in'],
  additionalProperties: false,
  properties: {
    access_token: { type: 'string', description: 'A JWT access token (RFC 9068): `typ: at+jwt`, verifiable against the JWKS.' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer' },
    scope: { type: 'string' },
  },
} as const;

/** The body of introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1) requests. */
export const tokenRequestOfClientBody = {
  type: 'object',
  required: ['token'],
  properties: {
    token: { type: 'string', maxLength: 8192 },
    token_type_hint: { type: 'string', maxLength: 64 },
    ...clientCredentialParameters,
  },
} as const;

/** RFC 7662 §2.2: the token's claims when it is active; only `active: false` otherwise. */
export const introspectionResponse = {
  type: 'object',
  required: ['active'],
  additionalProperties: true,
  properties: {
    active: { type: 'boolean' },
    token_type: { type: 'string', enum: ['Bearer'] },
    client_id: { type: 'string' },
    scope: { type: 'string' },
    sub: { type: 'string' },
    iss: { type: 'string' },
    aud: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    iat: { type: 'integer' },
    exp: { type: 'integer' },
    jti: { type: 'string' },
  },
} as const;
