/** POST /auth: issues a signed JWT. */
import type { FastifyPluginCallback, preValidationHookHandler } from 'fastify';
import { parseBasicCredentials } from '../src/basic-credentials.js';
import { rejectOtherMethods } from './http.js';
import { authBody, authQuery, errorResponses, EXPIRED_FLAG_SET, tokenResponse } from './schemas.js';

interface AuthBody {
  username?: string;
  password?: string;
}

interface AuthQuery {
  expired?: string;
}

/** The subject of a token requested without a username. */
export const DEMO_SUBJECT = 'demo-user';

/** Credentials are small; anything bigger is refused with 413 before it is parsed. */
export const AUTH_BODY_LIMIT_BYTES = 8 * 1024;

// A request with no body at all carries no credentials, which is allowed: validate it as `{}`.
const treatMissingBodyAsEmpty: preValidationHookHandler = (request, _reply, done) => {
  if (request.body === undefined) request.body = {};
  done();
};

export const authRoutes: FastifyPluginCallback = (app, _options, done) => {
  app.post<{ Body: AuthBody; Querystring: AuthQuery }>(
    '/auth',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      preValidation: treatMissingBodyAsEmpty,
      schema: { querystring: authQuery, body: authBody, response: { 200: tokenResponse, ...errorResponses } },
    },
    async (request) => {
      const basicUsername = parseBasicCredentials(request.headers.authorization)?.username;
      const expired = request.query.expired !== undefined && EXPIRED_FLAG_SET.includes(request.query.expired);
      const subject = basicUsername ?? request.body.username ?? DEMO_SUBJECT;
      return { token: await app.signer.issueToken({ subject, expired }) };
    },
  );
  rejectOtherMethods(app, '/auth', ['POST']);
  done();
};
