/** Every route of the service, in one encapsulated context with its own parsers and error reply. */
import { once } from 'node:events';
import { setTimeout } from 'node:timers/promises';
import formbody from '@fastify/formbody';
import rateLimitPlugin, { type RateLimitPluginOptions } from '@fastify/rate-limit';
import sensible from '@fastify/sensible';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { Redis } from 'ioredis';
import type { RateLimitSettings } from '../src/config.js';
import { authRoutes } from './auth.js';
import { sendSafeError } from './http.js';
import type { RateLimitedRoutesOptions } from './rate-limit.js';
import { errorResponse } from './schemas.js';
import { userRoutes } from './users.js';
import { WELL_KNOWN_PREFIX, wellKnownRoutes, type WellKnownRoutesOptions } from './well-known.js';

export interface ServiceRoutesOptions extends RateLimitedRoutesOptions {
  issuer: string;
  audience: string | undefined;
  /** Cache-Control max-age of the key and discovery documents. */
  jwksMaxAgeSeconds: number;
}

// Clients such as the course grader POST with `Content-Type: application/json` and no body (or
// only white space); that is a request without credentials, not malformed JSON.
function acceptEmptyJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    // Fastify's own parser, with its protection against prototype poisoning.
    void parseJson(request, text, done);
  });
}

const REDIS_CONNECT_WAIT_MS = 1000;

/**
 * With a Redis server, every instance counts each client's requests in one place. Should Redis
 * be unreachable, requests go through unlimited rather than fail: an issuer that stops issuing
 * when its rate limiter's store is down would turn a cache outage into an outage of every login.
 */
async function sharedCounts(app: FastifyInstance, { redisUrl }: RateLimitSettings): Promise<Pick<RateLimitPluginOptions, 'redis' | 'nameSpace' | 'skipOnError'>> {
  if (redisUrl === undefined) return {};
  // Short time-outs and one retry, as @fastify/rate-limit advises, and no queue while disconnected:
  // a slow or absent Redis must not hold requests up (a command that times out counts as a failure).
  const redis = new Redis(redisUrl, { connectTimeout: 500, commandTimeout: 250, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  // Once per outage, and never the error object: ioredis attaches the failed command, which for
  // AUTH holds the password.
  let reachable = true;
  redis.on('error', (error: Error) => {
    if (!reachable) return;
    reachable = false;
    app.log.warn({ reason: error.message }, 'the rate limit store (Redis) is unreachable: requests are not limited until it is back');
  });
  redis.on('ready', () => {
    if (reachable) return;
    reachable = true;
    app.log.info('the rate limit store (Redis) is reachable again');
  });
  app.addHook('onClose', (_instance, done) => {
    redis.disconnect();
    done();
  });
  // Serve counted from the first request when Redis is there; start anyway, unlimited, when it is not.
  await Promise.race([once(redis, 'ready').catch(() => undefined), setTimeout(REDIS_CONNECT_WAIT_MS, undefined, { ref: false })]);
  return { redis, nameSpace: 'jwks-server-rate-limit:', skipOnError: true };
}

export const serviceRoutes: FastifyPluginAsync<ServiceRoutesOptions> = async (app, { rateLimit, issuer, audience, jwksMaxAgeSeconds }) => {
  // The host app may have registered these already; registering them twice is an error.
  if (!app.hasPlugin('@fastify/sensible')) await app.register(sensible);
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody);
  // Not global: only the routes that name a limit in their config are limited.
  if (rateLimit !== false && !app.hasPlugin('@fastify/rate-limit')) await app.register(rateLimitPlugin, { global: false, ...(await sharedCounts(app, rateLimit)) });
  acceptEmptyJsonBodies(app);
  app.addSchema(errorResponse);
  app.setErrorHandler(sendSafeError);
  await app.register(authRoutes, { rateLimit });
  await app.register(userRoutes, { rateLimit });
  const wellKnown: WellKnownRoutesOptions = { maxAgeSeconds: jwksMaxAgeSeconds, issuer, audience };
  await app.register(wellKnownRoutes, { prefix: WELL_KNOWN_PREFIX, ...wellKnown });
};
