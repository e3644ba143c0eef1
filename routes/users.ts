/** POST /register and GET /users/me: registration with a generated password, and the caller's profile. */
import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import { DEMO_SUBJECT } from '../src/users/authenticator.js';
import { generatePassword, hashPassword } from '../src/users/passwords.js';
import type { AuthFailureReason } from '../src/server/metrics.js';
import type { AccessTokenWithdrawal } from '../src/oauth/oauth-server.js';
import { InvalidTokenError } from '../src/tokens/token-verifier.js';
import { rejectOtherMethods, requireStringFields } from './http.js';
import { rateLimitConfig, type RateLimitedRoutesOptions } from './rate-limit.js';
import { describedError, errorResponses, registrationBody, registrationResponse, userProfileResponse } from './schemas.js';

interface RegistrationBody {
  username: string;
  email: string;
}

const BEARER = /^bearer\s+(\S+)\s*$/i;
const WITHDRAWAL_MESSAGES: Readonly<Record<AccessTokenWithdrawal, string>> = {
  revoked: 'The token has been revoked',
  'client-removed': 'The client the token was issued to has been removed',
};
const BEARER_CHALLENGE = 'Bearer realm="jwks-server"';

export const userRoutes: FastifyPluginCallback<RateLimitedRoutesOptions> = (app, { rateLimit }, done) => {
  app.post<{ Body: RegistrationBody }>(
    '/register',
    {
      config: rateLimitConfig(rateLimit, app.metrics),
      preValidation: requireStringFields('username', 'email'),
      schema: {
        summary: 'Register a user',
        description: 'Creates a user and answers with a generated password (a UUID), shown this once and stored only as an argon2id hash.',
        tags: ['users'],
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        body: registrationBody,
        response: {
          201: { description: 'Registered; the password to authenticate with at POST /auth.', ...registrationResponse },
          400: describedError('The username or email is missing or invalid.'),
          409: describedError('The username or email is taken, or the username is reserved.'),
          413: describedError('The body is too large.'),
          415: describedError('The body is neither JSON nor a form.'),
          429: describedError('Too many requests from this address.'),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      // Demo tokens carry this subject; a user by that name would share it.
      if (request.body.username.toLowerCase() === DEMO_SUBJECT) throw app.httpErrors.conflict('That username is reserved');
      // A client's tokens carry its id as `sub`, as a user's carry the username (RFC 9068 §5).
      if (await app.clientRegistry.isTaken(request.body.username)) throw app.httpErrors.conflict('That username is an OAuth client\'s id');
      const password = generatePassword();
      // The database's unique constraints decide duplicates: a 409, and nothing written.
      await app.userStore.createUser({
        username: request.body.username,
        email: request.body.email.toLowerCase(),
        passwordHash: await hashPassword(password),
      });
      return reply.code(201).send({ password });
    },
  );

  // RFC 6750: a 401 names the Bearer scheme, and says invalid_token when a token was sent.
  function refuse(reply: FastifyReply, message: string, reason: AuthFailureReason): never {
    const tokenSent = reason !== 'token_missing';
    void reply.header('www-authenticate', tokenSent ? `${BEARER_CHALLENGE}, error="invalid_token"` : BEARER_CHALLENGE);
    app.metrics.authFailed('/users/me', reason);
    throw app.httpErrors.unauthorized(message);
  }

  const profileSchema = {
    summary: 'The profile of the user a token was issued to',
    tags: ['users'],
    security: [{ bearer: [] }],
    response: {
      200: { description: 'The registered user the bearer token names.', ...userProfileResponse },
      401: describedError('No bearer token, an invalid, expired or revoked one, or one not issued for a registered user\'s password.'),
      ...errorResponses,
    },
  };
  app.get('/users/me', { schema: profileSchema }, async (request, reply) => {
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    if (token === undefined) return refuse(reply, 'A bearer token from POST /auth is required', 'token_missing');
    const claims = await app.tokenVerifier.verify(token).catch((error: unknown) => {
      if (error instanceof InvalidTokenError) return refuse(reply, error.message, 'token_invalid');
      throw error;
    });
    // An access token from /oauth/token ends when it is revoked or its client removed.
    const withdrawal = await app.oauthServer.withdrawal(claims);
    if (withdrawal !== undefined) return refuse(reply, WITHDRAWAL_MESSAGES[withdrawal], 'token_revoked');
    // Only a token issued for a verified password speaks for a registered user; a demo token
    // naming the same username does not.
    const user = Array.isArray(claims.amr) && claims.amr.includes('pwd') && claims.sub !== undefined ? await app.userStore.findByUsername(claims.sub) : undefined;
    if (user === undefined) return refuse(reply, 'The token was not issued to a registered user', 'not_a_registered_user');
    return { username: user.username, email: user.email, date_registered: user.dateRegistered, last_login: user.lastLogin };
  });

  rejectOtherMethods(app, '/register', ['POST']);
  rejectOtherMethods(app, '/users/me', ['GET', 'HEAD']);
  done();
};
