/** The per-route rate limit of the routes that cost the server real work (argon2, signing). */
import type { FastifyContextConfig } from 'fastify';
import type { RateLimitSettings } from '../src/config.js';

/** Options of a route module whose routes are rate limited. */
export interface RateLimitedRoutesOptions {
  rateLimit: RateLimitSettings | false;
}

/** The route `config` that applies `settings` per client IP, or none when limiting is off. */
export function rateLimitConfig(settings: RateLimitSettings | false): FastifyContextConfig {
  return settings === false ? {} : { rateLimit: { max: settings.max, timeWindow: settings.windowMs } };
}
