/**
 * The service in this process, as `npm start` runs it: the app, built from the configuration, on
 * the listener the entry bound before loading it (src/server/server.ts); a metrics listener when
 * METRICS_PORT asks for one; and a graceful shutdown.
 */
import cluster from 'node:cluster';
import type { RequestListener } from 'node:http';
import closeWithGrace from 'close-with-grace';
import { AggregatorRegistry } from 'prom-client';
import { buildApp } from '../app.js';
import { READY_MESSAGE, SHUTDOWN_MESSAGE } from './cluster.js';
import type { ServerConfig } from './config.js';
import { listenForMetrics, type MetricsListener } from './metrics-server.js';
import type { StartupListener } from './startup-listener.js';
import { exitForStartupFailure } from './startup-failure.js';

/** Serves on `listener`, bound at `url` already, or bound here once the app is ready when no `url` is given (a worker of WORKERS). */
export async function serve(config: ServerConfig, listener: StartupListener, url: string | undefined): Promise<void> {
  let handleRequest: RequestListener | undefined;
  const app = buildApp({
    databaseUrl: config.databaseUrl,
    databasePoolSize: config.databasePoolSize,
    keyTtlSeconds: config.keyTtlSeconds,
    tokenTtlSeconds: config.tokenTtlSeconds,
    jwksMaxAgeSeconds: config.jwksMaxAgeSeconds,
    expiredKeyRetentionSeconds: config.expiredKeyRetentionSeconds,
    algorithms: config.algorithms,
    issuer: config.issuer,
    audience: config.audience,
    authMode: config.authMode,
    oauth: { passwordGrant: config.oauthPasswordGrant },
    keyEncryptionSecret: config.keyEncryptionSecret,
    rateLimit: config.rateLimit,
    trustProxy: config.trustProxy,
    logger: { level: config.logLevel },
    metrics: config.metrics.enabled && { route: config.metrics.port === undefined, processMetrics: true },
    serverFactory: (handler) => {
      handleRequest = handler;
      return listener.server;
    },
  });
  // Fastify closes only a server it made listen itself. This one must stop accepting connections,
  // and see the requests in flight answered, before the database closes after it.
  app.addHook('preClose', (done) => {
    void listener.close().then(() => {
      done();
    });
  });

  const worker = cluster.isWorker;
  const metricsPort = config.metrics.enabled ? config.metrics.port : undefined;
  // Assigned once the service serves; shutdown may come before that.
  let metricsListener: MetricsListener | undefined = undefined;
  // A worker stops when its primary tells it to (src/server/cluster.ts), and ignores the signals that
  // reach its whole process group; should the primary die, node:cluster ends the worker.
  const shutdown = closeWithGrace({ delay: 10_000, ...(worker ? { skip: ['SIGINT', 'SIGTERM'] } : {}) }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal: signal ?? 'primary' }, 'shutting down');
    await app.close();
    await metricsListener?.close();
  });
  if (worker) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);
    process.on('message', (message) => {
      if (message === SHUTDOWN_MESSAGE) shutdown.close();
    });
  }

  const failToStart = async (error: unknown, port: number, portVariable: string): Promise<never> => {
    await listener.close();
    await app.close();
    return exitForStartupFailure(error, { ...config, port }, portVariable);
  };
  try {
    await app.ready();
  } catch (error) {
    await failToStart(error, config.port, 'PORT');
  }
  if (handleRequest === undefined) throw new Error('Fastify did not ask for a server');
  const listening = url ?? (await listener.listen(config).catch((error: unknown) => failToStart(error, config.port, 'PORT')));
  // A shutdown that came while the app loaded has closed the listener already.
  if (!listener.serve(handleRequest)) return;
  app.log.info(`Server listening at ${listening}`);
  if (worker) process.send?.(READY_MESSAGE);
  if (metricsPort === undefined) return;
  // Workers answer the primary's requests for their metrics; the primary listens (src/server/cluster.ts).
  if (worker) {
    // Constructing one is what makes a worker answer the primary (prom-client adds its listener then).
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries(app.metrics.registry);
    return;
  }
  const { registry } = app.metrics;
  metricsListener = await listenForMetrics({ host: config.host, port: metricsPort, exposition: () => registry.metrics(), contentType: registry.contentType }).catch((error: unknown) =>
    failToStart(error, metricsPort, 'METRICS_PORT'),
  );
  app.log.info({ url: metricsListener.url }, 'metrics listening');
}
