/** JSON schemas of every request and response; Fastify validates and serializes with them. */

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

/** The error responses every route can give. */
export const errorResponses = {
  '4xx': { $ref: 'jwksErrorResponse#' },
  '5xx': { $ref: 'jwksErrorResponse#' },
} as const;

export const authQuery = {
  type: 'object',
  properties: {
    // Present with no value (`?expired`) counts as true, as it does for the course servers.
    expired: { type: 'string', enum: ['', 'true', '1', 'false', '0'] },
  },
} as const;

export const authBody = {
  type: 'object',
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 256 },
    password: { type: 'string', maxLength: 1024 },
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

// additionalProperties: false makes the serializer drop any member not named here, so a private
// member (d, p, q, dp, dq, qi) could never reach a client even if one slipped into a JWK.
const publicJwk = {
  type: 'object',
  required: ['kty', 'kid', 'use', 'alg', 'n', 'e'],
  additionalProperties: false,
  properties: {
    kty: { type: 'string' },
    kid: { type: 'string' },
    use: { type: 'string' },
    alg: { type: 'string' },
    n: { type: 'string' },
    e: { type: 'string' },
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
