/**
 * The whole service as one Fastify plugin, and `buildApp()`, the one way to wire it into a
 * server: the standalone process, the tests and the examples all build the app through here.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import databasePlugin from '../plugins/database.js';
import keyStorePlugin from '../plugins/key-store.js';
import keyringPlugin from '../plugins/keyring.js';
import metricsPlugin from '../plugins/metrics.js';
import oauthPlugin from '../plugins/oauth.js';
import signerPlugin from '../plugins/signer.js';
import usersPlugin from '../plugins/users.js';
import { sendNotFound, sendSafeError } from '../routes/http.js';
import { serviceRoutes } from '../routes/index.js';
import { systemClock, type Clock } from './common/clock.js';
import { requestId, SECURITY_HEADERS, SERVER_LIMITS } from './server/http-defaults.js';
import { OneLinePerRequest, serviceLoggerOptions } from './server/logging.js';
import { UNMATCHED_ROUTE } from './server/metrics.js';
import type { AuthMode } from './users/auth-modes.js';
import type { RegisteredClient } from './oauth/client-registry.js';
import { DEFAULT_ALGORITHMS, type AlgorithmList } from './keys/algorithms.js';
import {
  DEFAULT_EXPIRED_KEY_RETENTION_SECONDS,
  DEFAULT_JWKS_MAX_AGE_SECONDS,
  DEFAULT_KEY_TTL_SECONDS,
  DEFAULT_RATE_LIMIT,
  DEFAULT_TOKEN_TTL_SECONDS,
  type RateLimitSettings,
} from './server/config.js';

export interface JwksServiceOptions {
  /**
   * Where keys and users are kept: a SQLite file (created if missing), `:memory:`, a `sqlite:`
   * URL, or a `postgres://` URL of a database that several instances may share.
   */
  databaseUrl: string;
  /** PostgreSQL: the most connections this instance opens. Default 10. */
  databasePoolSize?: number;
  /** How long each key signs, in seconds. Default 3600. */
  keyTtlSeconds?: number;
  /** Lifetime of an issued token, in seconds. Default 900, or `keyTtlSeconds` if shorter. */
  tokenTtlSeconds?: number;
  /**
   * Cache-Control max-age of the key and discovery endpoints, and the least time a key is
   * published before it signs. Default 300, or `keyTtlSeconds` if shorter.
   */
  jwksMaxAgeSeconds?: number;
  /** How long expired and revoked keys are kept before they are pruned. Default one day. */
  expiredKeyRetentionSeconds?: number;
  /** The algorithms tokens are signed with, the default first. Default `['RS256']`. */
  algorithms?: AlgorithmList;
  /** The `iss` claim of every token, required back by `/users/me`. Default `jwks-server`. */
  issuer?: string;
  /** The `aud` claim of every token, required back by `/users/me`. Default: none. */
  audience?: string | undefined;
  /** `demo` (default): anyone gets a token, registered users' passwords are checked. `strict`: registered users only. */
  authMode?: AuthMode;
  /** The secret private keys are encrypted with at rest (AES-256-GCM); without one they are stored as PEM. */
  keyEncryptionSecret?: string | undefined;
  /** Per-IP limit on `POST /auth` and `POST /register`; `false` for none. Default 10 per 1000 ms. */
  rateLimit?: RateLimitSettings | false;
  /** How often, in milliseconds, keys changed by other processes are picked up and due rotations made. Default 1000. */
  keySyncIntervalMs?: number;
  /** Prometheus metrics (on by default, served at `GET /metrics`), or `false` for none. */
  metrics?: MetricsSettings | false;
  /** The OAuth 2.0 endpoints (`/oauth/token`, `/oauth/introspect`, `/oauth/revoke`): clients registered in code, the password grant. */
  oauth?: OAuthSettings;
  /** Source of the current unix time; tests inject one to move time. */
  clock?: Clock;
}

export interface MetricsSettings {
  /** Serve `GET /metrics` among the service's routes. Default true; false collects only (serve `app.metrics.registry` yourself). */
  route?: boolean;
  /** Node.js process metrics (CPU, memory, event loop, GC) in the same registry. Default false: they observe the whole process, so turn them on once per process. */
  processMetrics?: boolean;
}

export interface OAuthSettings {
  /**
   * Clients registered here, beside those `jwks-server clients add` keeps in the database (which
   * take second place to these for the same id). Secrets must be at least 43 characters.
   */
  clients?: readonly RegisteredClient[];
  /** Take `grant_type=password` from clients allowed it. Default false. */
  passwordGrant?: boolean;
}

/** The plugin cannot know where it is served from; the standalone server derives its issuer from HOST and PORT. */
export const DEFAULT_ISSUER = 'jwks-server';

/** Keys changed by the admin CLI or another instance are served within about this long. */
export const DEFAULT_KEY_SYNC_INTERVAL_MS = 1000;

/**
 * Registers the decorators `database`, `keyStore`, `metrics`, `keyring`, `signer`, `tokenVerifier`,
 * `userStore`, `authenticator`, `clientStore`, `clientRegistry`, `revocationStore` and
 * `oauthServer` (visible to the host app) and the routes `/auth`, `/register`, `/users/me`,
 * `/oauth/token`, `/oauth/introspect`, `/oauth/revoke`, `/healthz`, `/readyz`, `/metrics`,
 * `/.well-known/jwks.json`, `/.well-known/{kid}.json` and the discovery documents in a context of
 * their own.
 */
export const jwksService = fp<JwksServiceOptions>(
  async (app, options) => {
    const clock = options.clock ?? systemClock;
    const keyTtlSeconds = options.keyTtlSeconds ?? DEFAULT_KEY_TTL_SECONDS;
    const tokenTtlSeconds = options.tokenTtlSeconds ?? Math.min(DEFAULT_TOKEN_TTL_SECONDS, keyTtlSeconds);
    const jwksMaxAgeSeconds = options.jwksMaxAgeSeconds ?? Math.min(DEFAULT_JWKS_MAX_AGE_SECONDS, keyTtlSeconds);
    const issuer = options.issuer ?? DEFAULT_ISSUER;
    await app.register(databasePlugin, { databaseUrl: options.databaseUrl, poolSize: options.databasePoolSize });
    await app.register(keyStorePlugin, { keyEncryptionSecret: options.keyEncryptionSecret });
    const metrics = options.metrics ?? {};
    await app.register(metricsPlugin, { enabled: metrics !== false, processMetrics: metrics !== false && metrics.processMetrics === true, clock });
    await app.register(keyringPlugin, {
      algorithms: options.algorithms ?? DEFAULT_ALGORITHMS,
      policy: { keyTtlSeconds, tokenTtlSeconds, leadSeconds: jwksMaxAgeSeconds },
      expiredKeyRetentionSeconds: options.expiredKeyRetentionSeconds ?? DEFAULT_EXPIRED_KEY_RETENTION_SECONDS,
      syncIntervalMs: options.keySyncIntervalMs ?? DEFAULT_KEY_SYNC_INTERVAL_MS,
      clock,
    });
    await app.register(signerPlugin, { issuer, audience: options.audience, tokenTtlSeconds, clock });
    await app.register(usersPlugin, { authMode: options.authMode ?? 'demo' });
    await app.register(oauthPlugin, { clients: options.oauth?.clients, passwordGrant: options.oauth?.passwordGrant, clock });
    await app.register(serviceRoutes, {
      rateLimit: options.rateLimit ?? DEFAULT_RATE_LIMIT,
      issuer,
      audience: options.audience,
      jwksMaxAgeSeconds,
      metricsRoute: metrics !== false && metrics.route !== false,
    });
  },
  { name: 'jwks-service', fastify: '5.x' },
);

export interface AppOptions extends JwksServiceOptions {
  /**
   * Fastify's logger option; off unless given. Options given are laid over
   * {@link serviceLoggerOptions}: credentials, secrets and private keys stay redacted.
   */
  logger?: FastifyServerOptions['logger'];
  /** Fastify's trustProxy option: which proxies' X-Forwarded-For gives the client IP. Default: none. */
  trustProxy?: boolean | string;
  /**
   * Fastify's serverFactory option: serve on a Node.js server of your own. The standalone server
   * gives the one it bound before the app loaded (src/server/startup-listener.ts).
   */
  serverFactory?: FastifyServerOptions['serverFactory'];
}

/** What every response carries, whatever answers it: the security headers and the request id. */
function setCommonHeaders(request: FastifyRequest, reply: FastifyReply): void {
  void reply.headers(SECURITY_HEADERS).header('x-request-id', request.id);
}

function withServiceLogging(logger: FastifyServerOptions['logger'], secret: string | undefined): Exclude<FastifyServerOptions['logger'], undefined> {
  if (logger === false || logger === undefined) return false;
  const base = serviceLoggerOptions({ secrets: [secret] });
  return logger === true ? base : { ...base, ...logger };
}

/** A Fastify instance with the service registered; call `ready()` or `listen()` on it. */
export function buildApp({ logger = false, trustProxy = false, serverFactory, ...serviceOptions }: AppOptions): FastifyInstance {
  const app = Fastify({
    ...(serverFactory === undefined ? {} : { serverFactory }),
    logger: withServiceLogging(logger, serviceOptions.keyEncryptionSecret),
    logController: new OneLinePerRequest(),
    genReqId: requestId,
    trustProxy,
    bodyLimit: SERVER_LIMITS.bodyLimitBytes,
    requestTimeout: SERVER_LIMITS.requestTimeoutMs,
    keepAliveTimeout: SERVER_LIMITS.keepAliveTimeoutMs,
    connectionTimeout: SERVER_LIMITS.connectionTimeoutMs,
    http: { headersTimeout: SERVER_LIMITS.headersTimeoutMs, connectionsCheckingInterval: SERVER_LIMITS.timeoutCheckIntervalMs },
    // Odd kids of any length must reach the per-kid route and get its 404, not a router 414.
    routerOptions: { maxParamLength: 16 * 1024 },
    // A path that cannot even be percent-decoded names no route: a 404 like any unknown path.
    frameworkErrors: (error, request, reply) => {
      // Raised before any hook runs, so the headers every other response gets are set here.
      setCommonHeaders(request, reply);
      void (error.code === 'FST_ERR_BAD_URL' ? sendNotFound(request, reply) : sendSafeError(error, request, reply));
    },
  });
  app.setErrorHandler(sendSafeError);
  // Unknown paths are answered before any body is read, so a malformed body cannot make a 404 a 400.
  // A callback hook, not an async one: it runs on every request and would cost a promise each.
  app.addHook('onRequest', (request, reply, done) => {
    setCommonHeaders(request, reply);
    if (!request.is404) {
      done();
      return;
    }
    sendNotFound(request, reply);
    app.metrics.observeRequest(request.method, UNMATCHED_ROUTE, 404, reply.elapsedTime / 1000);
  });
  app.register(jwksService, serviceOptions);
  return app;
}
