/** POST /auth: issues a signed JWT to the subject the credentials name, once they pass the authenticator. */
import type { FastifyPluginCallback, preValidationHookHandler } from 'fastify';
import type { SigningAlgorithm } from '../src/keys/algorithms.js';
import { parseBasicCredentials, type Credentials } from '../src/users/basic-credentials.js';
import { rejectOtherMethods, requireStringFields } from './http.js';
import { OPTIONAL_BODY } from './openapi.js';
import { rateLimitConfig, type RateLimitedRoutesOptions } from './rate-limit.js';
import { authBody, authQuery, describedError, errorResponses, EXPIRED_FLAG_SET, tokenResponse } from './schemas.js';

interface AuthBody {
  username?: string;
  password?: string;
}

interface AuthQuery {
  expired?: string;
  alg?: SigningAlgorithm;
}

/** Credentials are small; anything bigger is refused with 413 before it is parsed. */
export const AUTH_BODY_LIMIT_BYTES = 8 * 1024;

const BASIC_CHALLENGE = 'Basic realm="jwks-server", charset="UTF-8"';

// A request with no body at all carries no credentials, which is allowed: validate it as `{}`.
const treatMissingBodyAsEmpty: preValidationHookHandler = (request, _reply, done) => {
  if (request.body === undefined) request.body = {};
  done();
};

function credentialsFromBody({ username, password = '' }: AuthBody): Credentials | undefined {
  return username === undefined ? undefined : { username, password };
}

export const authRoutes: FastifyPluginCallback<RateLimitedRoutesOptions> = (app, { rateLimit }, done) => {
  // Declared apart: the OpenAPI extension key is not a FastifySchema member.
  const schema = {
    summary: 'Issue a signed JWT',
    description:
      'Credentials come as HTTP Basic or as `username`/`password` in a JSON or form body. In demo mode anyone gets a token and a registered user must give the right password; in strict mode only registered users do. `?expired=true` signs with an expired key and sets an `exp` in the past, for testing verifiers.',
    tags: ['tokens'],
    security: [{ basic: [] }, {}],
    consumes: ['application/json', 'application/x-www-form-urlencoded'],
    [OPTIONAL_BODY]: true,
    querystring: authQuery(app.keyring.algorithms),
    body: authBody,
    response: {
      200: { description: 'The token, signed by the key its `kid` header names.', ...tokenResponse },
      400: describedError('The query or body is malformed.'),
      401: describedError('The credentials are wrong, or (strict mode) missing; `WWW-Authenticate` names Basic.'),
      413: describedError('The body is over 8 KiB.'),
      415: describedError('The body is neither JSON nor a form.'),
      429: describedError('Too many requests from this address; `Retry-After` says when to try again.'),
      ...errorResponses,
    },
  };
  app.post<{ Body: AuthBody; Querystring: AuthQuery }>(
    '/auth',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      config: rateLimitConfig(rateLimit, app.metrics),
      preValidation: [treatMissingBodyAsEmpty, requireStringFields('username', 'password')],
      schema,
    },
    async (request, reply) => {
      const credentials = parseBasicCredentials(request.headers.authorization) ?? credentialsFromBody(request.body);
      const authentication = await app.authenticator.authenticate(credentials);
      if (authentication.outcome === 'refused') {
        void reply.header('www-authenticate', BASIC_CHALLENGE);
        app.metrics.authFailed('/auth', credentials === undefined ? 'credentials_required' : 'wrong_credentials');
        throw app.httpErrors.unauthorized(authentication.reason);
      }
      const expired = request.query.expired !== undefined && EXPIRED_FLAG_SET.includes(request.query.expired);
      const user = authentication.outcome === 'user' ? authentication.user : undefined;
      const subject = authentication.outcome === 'user' ? authentication.user.username : authentication.subject;
      const algorithm = request.query.alg ?? app.keyring.algorithms[0];
      const token = await app.signer.issueToken({ subject, algorithm, expired, passwordVerified: user !== undefined });
      app.metrics.tokenIssued(algorithm, expired);
      await app.userStore.recordSuccessfulAuth({ requestIp: request.ip, userId: user?.id ?? null });
      return { token };
    },
  );
  rejectOtherMethods(app, '/auth', ['POST']);
  done();
};
