/** Reads HTTP Basic credentials (RFC 7617) from an Authorization header. */

export interface Credentials {
  username: string;
  password: string;
}

/** Limits that hold for credentials however they arrive (Basic, JSON or form). */
export const MAX_USERNAME_LENGTH = 256;
export const MAX_PASSWORD_LENGTH = 1024;

/** The header names the Basic scheme but its credentials cannot be read: the client's fault. */
export class MalformedCredentialsError extends Error {
  override readonly name = 'MalformedCredentialsError';
  readonly code = 'ERR_JWKS_MALFORMED_CREDENTIALS';
  readonly statusCode = 400;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The credentials of a Basic Authorization header; `undefined` when there is none or another scheme is used. */
export function parseBasicCredentials(authorization: string | undefined): Credentials | undefined {
  const [scheme, ...parameters] = (authorization ?? '').trim().split(/\s+/);
  if (scheme?.toLowerCase() !== 'basic') return undefined;
  const [encoded] = parameters;
  if (encoded === undefined || parameters.length > 1 || !BASE64.test(encoded)) {
    throw new MalformedCredentialsError('Basic credentials must be one base64 token');
  }
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  if (separator < 1) throw new MalformedCredentialsError('Basic credentials must be a username, a colon and a password');
  const credentials = { username: decoded.slice(0, separator), password: decoded.slice(separator + 1) };
  if (credentials.username.length > MAX_USERNAME_LENGTH || credentials.password.length > MAX_PASSWORD_LENGTH) {
    throw new MalformedCredentialsError(
      `Basic credentials allow usernames of up to ${String(MAX_USERNAME_LENGTH)} and passwords of up to ${String(MAX_PASSWORD_LENGTH)} characters`,
    );
  }
  return credentials;
}
