/** Decorates the instance with the service's Prometheus metrics (a no-op set when they are turned off). */
import fp from 'fastify-plugin';
import type { Clock } from '../src/common/clock.js';
import { createServiceMetrics, disabledServiceMetrics, type ServiceMetrics } from '../src/server/metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServiceMetrics;
  }
}

export interface MetricsPluginOptions {
  enabled: boolean;
  /** Node.js process metrics as well; see {@link createServiceMetrics}. */
  processMetrics: boolean;
  clock: Clock;
}

export default fp<MetricsPluginOptions>(
  (app, { enabled, processMetrics, clock }, done) => {
    const metrics = enabled
      ? createServiceMetrics({
          countKeys: () => app.keyStore.countByState(clock()),
          onCountKeysError: (error) => {
            if (!app.databaseOutage.failedIfUnavailable(error, 'metrics')) app.log.warn({ err: error }, 'could not count the stored keys for the metrics');
          },
          processMetrics,
        })
      : disabledServiceMetrics();
    app.decorate('metrics', metrics);
    done();
  },
  { name: 'jwks-metrics', fastify: '5.x', dependencies: ['jwks-key-store'] },
);
