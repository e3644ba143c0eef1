/** A listener of its own for GET /metrics, so that a scraper can reach the metrics on a port the public cannot. */
import sensible from '@fastify/sensible';
import Fastify from 'fastify';
import { sendNotFound, sendSafeError } from '../../routes/http.js';
import { METRICS_PATH, metricsRoutes, type MetricsRoutesOptions } from '../../routes/metrics.js';
import { errorResponse } from '../../routes/schemas.js';

export interface MetricsListenerOptions extends MetricsRoutesOptions {
  host: string;
  port: number;
}

export interface MetricsListener {
  /** Where the metrics are: `http://host:port/metrics`. */
  url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics on `host`:`port`; every other path is a 404. */
export async function listenForMetrics({ host, port, ...routes }: MetricsListenerOptions): Promise<MetricsListener> {
  const app = Fastify({ logger: false });
  app.setErrorHandler(sendSafeError);
  app.setNotFoundHandler(sendNotFound);
  await app.register(sensible);
  app.addSchema(errorResponse);
  await app.register(metricsRoutes, routes);
  const address = await app.listen({ host, port });
  return { url: `${address}${METRICS_PATH}`, close: () => app.close() };
}
