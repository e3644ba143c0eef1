/** The per-route rate limit of the routes that cost the server real work (argon2, signing). */
import type { FastifyContextConfig } from 'fastify';
import type { RateLimitSettings } from '../src/config.js';

/** The route `config` that applies `settings` per client IP, or none when limiting is off. */
export function rateLimitConfig(settings: RateLimitSettings | false): FastifyContextConfig {
  return settings === false ? {} : { rateLimit: { max: settings.max, timeWindow: settings.windowMs } };
}
