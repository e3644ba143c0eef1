/** Every route of the service, in one encapsulated context with its own parsers and error reply. */
import formbody from '@fastify/formbody';
import rateLimitPlugin from '@fastify/rate-limit';
import sensible from '@fastify/sensible';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { authRoutes } from './auth.js';
import { UNMATCHED_ROUTE } from '../src/server/metrics.js';
import { healthRoutes } from './health.js';
import { routeOf, sendSafeError } from './http.js';
import { metricsRoutes } from './metrics.js';
import { oauthRoutes } from './oauth.js';
import { openApiRoutes } from './openapi.js';
import { rateLimitStoreOptions, type RateLimitedRoutesOptions } from './rate-limit.js';
import { errorResponse } from './schemas.js';
import { userRoutes } from './users.js';
import { wellKnownRoutes } from './well-known.js';
import { WELL_KNOWN_PREFIX, type WellKnownRoutesOptions } from './well-known-settings.js';

export interface ServiceRoutesOptions extends RateLimitedRoutesOptions {
  issuer: string;
  audience: string | undefined;
  /** Cache-Control max-age of the key and discovery documents. */
  jwksMaxAgeSeconds: number;
  /** Serve GET /metrics here. */
  metricsRoute: boolean;
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

/**
 * One callback hook for what every answered request is counted in, as every request runs it: the
 * metrics (the route is the pattern, so label values stay few), and the end of a database outage,
 * when a route that failed during it succeeds again (a check of one variable otherwise).
 */
function observeResponses(app: FastifyInstance): void {
  const { metrics, databaseOutage } = app;
  app.addHook('onResponse', (request, reply, done) => {
    if (metrics.enabled) metrics.observeRequest(request.method, request.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode, reply.elapsedTime / 1000);
    if (databaseOutage.active && reply.statusCode < 400) databaseOutage.succeeded(routeOf(request));
    done();
  });
}

export const serviceRoutes: FastifyPluginAsync<ServiceRoutesOptions> = async (app, { rateLimit, issuer, audience, jwksMaxAgeSeconds, metricsRoute }) => {
  // The host app may have registered these already; registering them twice is an error.
  if (!app.hasPlugin('@fastify/sensible')) await app.register(sensible);
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody);
  // Not global: only the routes that name a limit in their config are limited.
  if (rateLimit !== false && !app.hasPlugin('@fastify/rate-limit')) await app.register(rateLimitPlugin, { global: false, ...(await rateLimitStoreOptions(app, rateLimit)) });
  acceptEmptyJsonBodies(app);
  app.addSchema(errorResponse);
  app.setErrorHandler(sendSafeError);
  observeResponses(app);
  await app.register(openApiRoutes);
  await app.register(authRoutes, { rateLimit });
  await app.register(userRoutes, { rateLimit });
  await app.register(oauthRoutes, { rateLimit });
  await app.register(healthRoutes);
  if (metricsRoute) await app.register(metricsRoutes, { exposition: () => app.metrics.registry.metrics(), contentType: app.metrics.registry.contentType });
  const wellKnown: WellKnownRoutesOptions = { maxAgeSeconds: jwksMaxAgeSeconds, issuer, audience };
  await app.register(wellKnownRoutes, { prefix: WELL_KNOWN_PREFIX, ...wellKnown });
};
