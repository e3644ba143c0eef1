/** The per-route rate limit of the routes that cost the server real work (argon2, signing), and where it counts. */
import { once } from 'node:events';
import { setTimeout } from 'node:timers/promises';
import type { RateLimitPluginOptions } from '@fastify/rate-limit';
import type { FastifyContextConfig, FastifyInstance } from 'fastify';
import type { RateLimitSettings } from '../src/server/config.js';
import { UNMATCHED_ROUTE, type ServiceMetrics } from '../src/server/metrics.js';

/** Options of a route module whose routes are rate limited. */
export interface RateLimitedRoutesOptions {
  rateLimit: RateLimitSettings | false;
}

/** The route `config` that applies `settings` per client IP, counting refusals in `metrics`, or none when limiting is off. */
export function rateLimitConfig(settings: RateLimitSettings | false, metrics: ServiceMetrics): FastifyContextConfig {
  if (settings === false) return {};
  return {
    rateLimit: {
      max: settings.max,
      timeWindow: settings.windowMs,
      onExceeded: (request) => {
        metrics.rateLimited(request.routeOptions.url ?? UNMATCHED_ROUTE);
      },
    },
  };
}

const REDIS_CONNECT_WAIT_MS = 1000;

/**
 * With a Redis server, every instance counts each client's requests in one place. Should Redis
 * be unreachable, requests go through unlimited rather than fail: an issuer that stops issuing
 * when its rate limiter's store is down would turn a cache outage into an outage of every login.
 */
export async function rateLimitStoreOptions(app: FastifyInstance, { redisUrl }: RateLimitSettings): Promise<Pick<RateLimitPluginOptions, 'redis' | 'nameSpace' | 'skipOnError'>> {
  if (redisUrl === undefined) return {};
  // Loaded only when there is a Redis to count in: most servers count alone and start without it.
  const { Redis } = await import('ioredis');
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
