/** GET /metrics: every metric of the service in the Prometheus text format, for a scraper. */
import type { FastifyPluginCallback } from 'fastify';
import { rejectOtherMethods } from './http.js';
import { errorResponses } from './schemas.js';

export const METRICS_PATH = '/metrics';

export interface MetricsRoutesOptions {
  /** The exposition text: one registry's, or every worker's summed by the primary. */
  exposition: () => Promise<string>;
  contentType: string;
}

export const metricsRoutes: FastifyPluginCallback<MetricsRoutesOptions> = (app, { exposition, contentType }, done) => {
  const schema = {
    summary: 'Prometheus metrics',
    tags: ['operations'],
    response: { 200: { description: 'The Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errorResponses },
  };
  app.get(METRICS_PATH, { schema }, async (_request, reply) => {
    const text = await exposition();
    return reply.header('cache-control', 'no-store').type(contentType).send(text);
  });
  rejectOtherMethods(app, METRICS_PATH, ['GET', 'HEAD']);
  done();
};
