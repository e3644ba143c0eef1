/** The errors of the OAuth endpoints, each with its RFC 6749 §5.2 (or RFC 7009 §2.2.1) error code. */

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'unsupported_token_type'
  | 'server_error'
  | 'temporarily_unavailable';

const STATUS_OF: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  unsupported_token_type: 400,
  server_error: 500,
  temporarily_unavailable: 503,
};

/** A refusal the client is told about as `{ "error": oauthCode, "error_description": message }`. */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  readonly code = 'ERR_JWKS_OAUTH';
  readonly statusCode: number;

  constructor(
    readonly oauthCode: OAuthErrorCode,
    description: string,
  ) {
    super(description);
    this.statusCode = STATUS_OF[oauthCode];
  }
}

/** The OAuth code of an error answered with `statusCode`, raised by us or by the HTTP layer (a 413, a 415, a malformed body ...). */
export function oauthCodeOf(error: unknown, statusCode: number): OAuthErrorCode {
  if (error instanceof OAuthError) return error.oauthCode;
  // RFC 6749 defines temporarily_unavailable for the authorization endpoint; it says the same here.
  if (statusCode === 503) return 'temporarily_unavailable';
  if (statusCode >= 500) return 'server_error';
  return statusCode === 401 ? 'invalid_client' : 'invalid_request';
}
