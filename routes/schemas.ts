/** JSON schemas of every request and response; Fastify validates and serializes with them. */
import { MAX_PASSWORD_LENGTH, MAX_USERNAME_LENGTH } from '../src/basic-credentials.js';

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

// A bare `?expired` counts as set, as it does for the course servers; the capitalised spellings
// are what Python and other clients send for a boolean.
export const EXPIRED_FLAG_SET = ['', 'true', 'True', 'TRUE', '1'];
const EXPIRED_FLAG_UNSET = ['false', 'False', 'FALSE', '0'];

export const authQuery = {
  type: 'object',
  properties: {
    expired: { type: 'string', enum: [...EXPIRED_FLAG_SET, ...EXPIRED_FLAG_UNSET] },
  },
} as const;

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
