/**
 * The whole service as one Fastify plugin, and `buildApp()`, the one way to wire it into a
 * server: the standalone process, the tests and the examples all build the app through here.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import databasePlugin from '../plugins/database.js';
import keyStorePlugin from '../plugins/key-store.js';
import keyringPlugin from '../plugins/keyring.js';
import signerPlugin from '../plugins/signer.js';
import usersPlugin from '../plugins/users.js';
import { sendNotFound, sendSafeError } from '../routes/http.js';
import { serviceRoutes } from '../routes/index.js';
import { systemClock, type Clock } from './clock.js';
import type { AuthMode } from './authenticator.js';
import { DEFAULT_KEY_TTL_SECONDS, DEFAULT_RATE_LIMIT, DEFAULT_TOKEN_TTL_SECONDS, type RateLimitSettings } from './config.js';

export interface JwksServiceOptions {
  /** The SQLite file that holds the keys (created if missing), or `:memory:`. */
  databasePath: string;
  /** Lifetime of a generated key, in seconds. Default 3600. */
  keyTtlSeconds?: number;
  /** Lifetime of an issued token, in seconds; never past its key's expiry. Default 900. */
  tokenTtlSeconds?: number;
  /** The `iss` claim of every token, required back by `/users/me`. Default `jwks-server`. */
  issuer?: string;
  /** `demo` (default): anyone gets a token, registered users' passwords are checked. `strict`: registered users only. */
  authMode?: AuthMode;
  /** The secret private keys are encrypted with at rest (AES-256-GCM); without one they are stored as PEM. */
  keyEncryptionSecret?: string | undefined;
  /** Per-IP limit on `POST /auth` and `POST /register`; `false` for none. Default 10 per 1000 ms. */
  rateLimit?: RateLimitSettings | false;
  /** Source of the current unix time; tests inject one to move time. */
  clock?: Clock;
}

/** The plugin cannot know where it is served from; the standalone server derives its issuer from HOST and PORT. */
export const DEFAULT_ISSUER = 'jwks-server';

/**
 * Registers the decorators `database`, `keyStore`, `keyring`, `signer`, `tokenVerifier`,
 * `userStore` and `authenticator` (visible to the host app) and the routes `/auth`, `/register`,
 * `/users/me`, `/.well-known/jwks.json` and `/.well-known/{kid}.json` in a context of their own.
 */
export const jwksService = fp<JwksServiceOptions>(
  async (app, options) => {
    const clock = options.clock ?? systemClock;
    const keyTtlSeconds = options.keyTtlSeconds ?? DEFAULT_KEY_TTL_SECONDS;
    const tokenTtlSeconds = options.tokenTtlSeconds ?? Math.min(DEFAULT_TOKEN_TTL_SECONDS, keyTtlSeconds);
    await app.register(databasePlugin, { databasePath: options.databasePath });
    await app.register(keyStorePlugin, { keyEncryptionSecret: options.keyEncryptionSecret });
    await app.register(keyringPlugin, { keyTtlSeconds, clock });
    await app.register(signerPlugin, { issuer: options.issuer ?? DEFAULT_ISSUER, tokenTtlSeconds, clock });
    await app.register(usersPlugin, { authMode: options.authMode ?? 'demo' });
    await app.register(serviceRoutes, { rateLimit: options.rateLimit ?? DEFAULT_RATE_LIMIT });
  },
  { name: 'jwks-service', fastify: '5.x' },
);

export interface AppOptions extends JwksServiceOptions {
  /** Fastify's logger option; off unless given. */
  logger?: FastifyServerOptions['logger'];
  /** Fastify's trustProxy option: which proxies' X-Forwarded-For gives the client IP. Default: none. */
  trustProxy?: boolean | string;
}

/** A Fastify instance with the service registered; call `ready()` or `listen()` on it. */
export function buildApp({ logger = false, trustProxy = false, ...serviceOptions }: AppOptions): FastifyInstance {
  const app = Fastify({
    logger,
    trustProxy,
    // Odd kids of any length must reach the per-kid route and get its 404, not a router 414.
    routerOptions: { maxParamLength: 16 * 1024 },
    // A path that cannot even be percent-decoded names no route: a 404 like any unknown path.
    frameworkErrors: (error, request, reply) => {
      void (error.code === 'FST_ERR_BAD_URL' ? sendNotFound(request, reply) : sendSafeError(error, request, reply));
    },
  });
  app.setErrorHandler(sendSafeError);
  // Unknown paths are answered before any body is read, so a malformed body cannot make a 404 a 400.
  app.addHook('onRequest', async (request, reply) => {
    if (request.is404) return sendNotFound(request, reply);
  });
  app.register(jwksService, serviceOptions);
  return app;
}
