/**
 * Reads a confidential client's credentials from a request (RFC 6749 §2.3.1): HTTP Basic with
 * the id and secret each form-encoded first (`client_secret_basic`), or `client_id` and
 * `client_secret` in the form body (`client_secret_post`); never both.
 */
import { MalformedCredentialsError, parseBasicCredentials } from '../users/basic-credentials.js';
import { OAuthError } from './oauth-error.js';

export type ClientAuthenticationMethod = 'client_secret_basic' | 'client_secret_post';

export const CLIENT_AUTHENTICATION_METHODS: readonly ClientAuthenticationMethod[] = ['client_secret_basic', 'client_secret_post'];

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
  method: ClientAuthenticationMethod;
}

export interface ClientCredentialParameters {
  client_id?: string | undefined;
  client_secret?: string | undefined;
}

/** Refused client authentication: 401 `invalid_client`, with a Basic challenge when Basic was tried. */
export class ClientAuthenticationError extends OAuthError {
  constructor(
    description: string,
    readonly basicAttempted: boolean,
  ) {
    super('invalid_client', description);
  }
}

function formDecode(value: string): string {
  try {
    return decodeURIComponent(value.replaceAll('+', ' '));
  } catch {
    throw new ClientAuthenticationError('The Basic credentials are not form-encoded (RFC 6749 §2.3.1)', true);
  }
}

function basicCredentials(authorization: string | undefined): ClientCredentials | undefined {
  let credentials;
  try {
    credentials = parseBasicCredentials(authorization);
  } catch (error) {
    if (error instanceof MalformedCredentialsError) throw new ClientAuthenticationError(error.message, true);
    throw error;
  }
  if (credentials === undefined) return undefined;
  return { clientId: formDecode(credentials.username), clientSecret: formDecode(credentials.password), method: 'client_secret_basic' };
}

/** The credentials the request carries; throws an {@link OAuthError} when there are none or they are ambiguous. */
export function readClientCredentials(authorization: string | undefined, { client_id, client_secret }: ClientCredentialParameters): ClientCredentials {
  const basic = basicCredentials(authorization);
  if (basic !== undefined) {
    if (client_secret !== undefined) throw new OAuthError('invalid_request', 'Authenticate the client one way only: HTTP Basic or client_secret in the body, not both');
    if (client_id !== undefined && client_id !== basic.clientId) throw new OAuthError('invalid_request', 'client_id in the body differs from the client of the Basic credentials');
    return basic;
  }
  if (client_id === undefined) throw new ClientAuthenticationError('Client authentication is required: HTTP Basic, or client_id and client_secret in the body', false);
  if (client_secret === undefined) throw new ClientAuthenticationError('client_secret is required: only confidential clients are registered here', false);
  return { clientId: client_id, clientSecret: client_secret, method: 'client_secret_post' };
}
