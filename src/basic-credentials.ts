/** Reads HTTP Basic credentials (RFC 7617) from an Authorization header. */

export interface Credentials {
  username: string;
  password: string;
}

/** The header names the Basic scheme but its credentials cannot be read: the client's fault. */
export class MalformedCredentialsError extends Error {
  override readonly name = 'MalformedCredentialsError';
  readonly code = 'ERR_JWKS_MALFORMED_CREDENTIALS';
  readonly statusCode = 400;
}

const BASIC_SCHEME = /^basic\s+(\S*)\s*$/i;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The credentials of a Basic Authorization header; `undefined` when there is none or another scheme is used. */
export function parseBasicCredentials(authorization: string | undefined): Credentials | undefined {
  const encoded = authorization === undefined ? undefined : BASIC_SCHEME.exec(authorization)?.[1];
  if (encoded === undefined) return undefined;
  if (!BASE64.test(encoded)) throw new MalformedCredentialsError('Basic credentials must be base64');
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  if (separator < 1) throw new MalformedCredentialsError('Basic credentials must be a username, a colon and a password');
  return { username: decoded.slice(0, separator), password: decoded.slice(separator + 1) };
}
