/** POST /register and GET /users/me: registration with a generated password, and the caller's profile. */
import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import { DEMO_SUBJECT } from '../src/authenticator.js';
import { generatePassword, hashPassword } from '../src/passwords.js';
import type { AuthFailureReason } from '../src/metrics.js';
import { InvalidTokenError } from '../src/token-verifier.js';
import { rejectOtherMethods, requireStringFields } from './http.js';
import { rateLimitConfig, type RateLimitedRoutesOptions } from './rate-limit.js';
import { errorResponses, registrationBody, registrationResponse, userProfileResponse } from './schemas.js';

interface RegistrationBody {
  username: string;
  email: string;
}

const BEARER = /^bearer\s+(\S+)\s*$/i;
const BEARER_CHALLENGE = 'Bearer realm="jwks-server"';

export const userRoutes: FastifyPluginCallback<RateLimitedRoutesOptions> = (app, { rateLimit }, done) => {
  app.post<{ Body: RegistrationBody }>(
    '/register',
    {
      config: rateLimitConfig(rateLimit, app.metrics),
      preValidation: requireStringFields('username', 'email'),
      schema: { body: registrationBody, response: { 201: registrationResponse, ...errorResponses } },
    },
    async (request, reply) => {
      // Demo tokens carry this subject; a user by that name would share it.
      if (request.body.username.toLowerCase() === DEMO_SUBJECT) throw app.httpErrors.conflict('That username is reserved');
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

  app.get('/users/me', { schema: { response: { 200: userProfileResponse, ...errorResponses } } }, async (request, reply) => {
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1];
    if (token === undefined) return refuse(reply, 'A bearer token from POST /auth is required', 'token_missing');
    const claims = await app.tokenVerifier.verify(token).catch((error: unknown) => {
      if (error instanceof InvalidTokenError) return refuse(reply, error.message, 'token_invalid');
      throw error;
    });
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
