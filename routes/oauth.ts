/**
 * POST /oauth/token (RFC 6749), /oauth/introspect (RFC 7662) and /oauth/revoke (RFC 7009), in a
 * context of their own: form bodies only, and errors in RFC 6749's shape.
 */
import type { FastifyError, FastifyPluginCallback, FastifyReply, FastifyRequest, preValidationHookHandler } from 'fastify';
import { ClientAuthenticationError, readClientCredentials, type ClientCredentialParameters } from '../src/oauth/client-authentication.js';
import type { OAuthClient } from '../src/oauth/clients.js';
import { OAuthError, oauthCodeOf } from '../src/oauth/oauth-error.js';
import type { TokenParameters } from '../src/oauth/oauth-server.js';
import { AUTH_BODY_LIMIT_BYTES } from './auth.js';
import { rejectOtherMethods, retryAfterOf, safeError, sendOnceBodyIsDone } from './http.js';
import { rateLimitConfig, type RateLimitedRoutesOptions } from './rate-limit.js';
import {
  accessTokenResponse,
  describedOAuthError,
  introspectionResponse,
  oauthErrorResponse,
  oauthErrorResponses,
  tokenRequestBody,
  tokenRequestOfClientBody,
} from './schemas.js';

export const TOKEN_PATH = '/oauth/token';
export const INTROSPECTION_PATH = '/oauth/introspect';
export const REVOCATION_PATH = '/oauth/revoke';

type OAuthBody = ClientCredentialParameters & Record<string, unknown>;

// RFC 6749 §5.1: nothing on the way may keep a token, nor an answer about one.
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;
const BASIC_CHALLENGE = 'Basic realm="jwks-server", charset="UTF-8", error="invalid_client"';

// Fastify's own words for these say what is wrong, but not what is right.
const DESCRIPTIONS: Readonly<Record<string, string>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'The body must be application/x-www-form-urlencoded',
  FST_ERR_CTP_BODY_TOO_LARGE: `The body must be at most ${String(AUTH_BODY_LIMIT_BYTES / 1024)} KiB`,
};

function sendOAuthError(error: FastifyError | OAuthError, request: FastifyRequest, reply: FastifyReply): FastifyReply | Promise<void> {
  const safe = safeError(error, request);
  const { statusCode, message } = safe;
  const description = statusCode < 500 ? (DESCRIPTIONS[error.code] ?? message) : message;
  if (error instanceof ClientAuthenticationError && error.basicAttempted) void reply.header('www-authenticate', BASIC_CHALLENGE);
  const body = { statusCode, error: oauthCodeOf(error, statusCode), error_description: description, message: description };
  return sendOnceBodyIsDone(error, request, () => reply.code(statusCode).headers({ ...NO_STORE, ...retryAfterOf(safe) }).send(body));
}

/**
 * RFC 6749 §3.1: a parameter may not be sent twice (the form parser makes repeats an array). A
 * request without a body is one without parameters.
 */
const requireSingleParameters: preValidationHookHandler = (request, _reply, done) => {
  request.body ??= {};
  const repeated = Object.entries(request.body as OAuthBody).find(([, value]) => Array.isArray(value));
  if (repeated === undefined) done();
  else done(new OAuthError('invalid_request', `The parameter ${repeated[0]} is sent more than once`));
};

export const oauthRoutes: FastifyPluginCallback<RateLimitedRoutesOptions> = (app, { rateLimit }, done) => {
  // RFC 6749 §3.2 and its kin: these endpoints take form bodies, nothing else.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addSchema(oauthErrorResponse);
  app.setErrorHandler(sendOAuthError);

  async function authenticatedClient(request: FastifyRequest<{ Body: OAuthBody }>): Promise<OAuthClient> {
    try {
      return await app.clientRegistry.authenticate(readClientCredentials(request.headers.authorization, request.body));
    } catch (error) {
      if (error instanceof ClientAuthenticationError) app.metrics.authFailed(request.routeOptions.url ?? TOKEN_PATH, 'wrong_client_credentials');
      throw error;
    }
  }

  const clientAuthentication = [{ basic: [] }, {}];
  const common = { bodyLimit: AUTH_BODY_LIMIT_BYTES, preValidation: requireSingleParameters } as const;

  app.post<{ Body: TokenParameters & OAuthBody }>(
    TOKEN_PATH,
    {
      ...common,
      config: rateLimitConfig(rateLimit, app.metrics),
      schema: {
        summary: 'Issue an OAuth 2.0 access token',
        description:
          'RFC 6749. `grant_type=client_credentials`, or `password` for registered users when `OAUTH_PASSWORD_GRANT=true`, by a client authenticated with HTTP Basic (`client_secret_basic`: id and secret form-encoded, then base64) or `client_id` and `client_secret` in the body (`client_secret_post`). The access token is a JWT (RFC 9068, `typ: at+jwt`) signed by the keys of the JWKS. Rate limited per client address like `POST /auth`.',
        tags: ['oauth'],
        security: clientAuthentication,
        consumes: ['application/x-www-form-urlencoded'],
        body: tokenRequestBody,
        response: {
          200: { description: 'The access token; `Cache-Control: no-store`.', ...accessTokenResponse },
          ...oauthErrorResponses,
          429: describedOAuthError('Too many requests from this address; `Retry-After` says when to try again.'),
        },
      },
    },
    async (request, reply) => {
      const client = await authenticatedClient(request);
      const response = await app.oauthServer.issueToken(client, request.body, request.ip);
      app.metrics.tokenIssued(app.keyring.algorithms[0], false);
      return reply.headers(NO_STORE).send(response);
    },
  );

  app.post<{ Body: OAuthBody & { token: string } }>(
    INTROSPECTION_PATH,
    {
      ...common,
      schema: {
        summary: 'Introspect a token',
        description:
          'RFC 7662, for authenticated clients (as at the token endpoint). A token this server issued, whose signature, issuer and expiry hold, which was not revoked and whose client was not removed, is `{"active": true}` with its claims; anything else is `{"active": false}`.',
        tags: ['oauth'],
        security: clientAuthentication,
        consumes: ['application/x-www-form-urlencoded'],
        body: tokenRequestOfClientBody,
        response: { 200: { description: 'Whether the token is active, and its claims if it is.', ...introspectionResponse }, ...oauthErrorResponses },
      },
    },
    async (request, reply) => {
      await authenticatedClient(request);
      return reply.headers(NO_STORE).send(await app.oauthServer.introspect(request.body.token));
    },
  );

  app.post<{ Body: OAuthBody & { token: string } }>(
    REVOCATION_PATH,
    {
      ...common,
      schema: {
        summary: 'Revoke an access token',
        description:
          'RFC 7009, for the client the token was issued to. From then on the token is inactive on introspection and refused by `GET /users/me`, on every instance sharing the database. An invalid or expired token is answered 200 as well: there is nothing left to revoke.',
        tags: ['oauth'],
        security: clientAuthentication,
        consumes: ['application/x-www-form-urlencoded'],
        body: tokenRequestOfClientBody,
        response: { 200: { description: 'Revoked, or nothing to revoke. No body.', type: 'null' }, ...oauthErrorResponses },
      },
    },
    async (request, reply) => {
      const client = await authenticatedClient(request);
      await app.oauthServer.revoke(client, request.body.token);
      return reply.code(200).send();
    },
  );

  for (const path of [TOKEN_PATH, INTROSPECTION_PATH, REVOCATION_PATH]) rejectOtherMethods(app, path, ['POST'], oauthErrorResponses);
  done();
};
