/**
 * The standalone server: configuration from the environment, the app, and a graceful shutdown;
 * with WORKERS above 1, a primary process that runs that many of them on the port.
 */
import cluster from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import { pino, type Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { buildApp } from './app.js';
import { SHUTDOWN_MESSAGE, superviseWorkers } from './cluster.js';
import { ConfigError, loadConfig, type ServerConfig } from './config.js';
import { listenForMetrics, type MetricsListener } from './metrics-server.js';
import { describeStartupFailure } from './startup-failure.js';

function configOrExit(): ServerConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Invalid configuration: ${error.message}`);
    process.exit(1);
  }
}

/** The one-line explanation of a failure to listen on `port` (set by `portVariable`); a failure no setting explains is rethrown as it is. */
function explainStartupFailure(error: unknown, config: ServerConfig, port: number, portVariable: string): string {
  const explanation = describeStartupFailure(error, { ...config, port }, portVariable);
  if (explanation === undefined) throw error;
  return explanation;
}

function exitWith(explanation: string): never {
  console.error(`Cannot start: ${explanation}`);
  process.exit(1);
}

async function serve(config: ServerConfig): Promise<void> {
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
    keyEncryptionSecret: config.keyEncryptionSecret,
    rateLimit: config.rateLimit,
    trustProxy: config.trustProxy,
    logger: { level: config.logLevel },
    metrics: config.metrics.enabled && { route: config.metrics.port === undefined, processMetrics: true },
  });

  const worker = cluster.isWorker;
  const metricsPort = config.metrics.enabled ? config.metrics.port : undefined;
  // Assigned once the service listens; shutdown may come before that.
  let metricsListener: MetricsListener | undefined = undefined;
  // A worker stops when its primary tells it to (src/cluster.ts), and ignores the signals that
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
    const explanation = explainStartupFailure(error, config, port, portVariable);
    await app.close();
    return exitWith(explanation);
  };
  await app.listen({ host: config.host, port: config.port }).catch((error: unknown) => failToStart(error, config.port, 'PORT'));
  if (metricsPort === undefined) return;
  // Workers answer the primary's requests for their metrics; the primary listens (serveClusterMetrics).
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

/** With WORKERS and METRICS_PORT, the primary serves every worker's metrics summed (counters, histograms). */
async function serveClusterMetrics(config: ServerConfig, log: Logger): Promise<void> {
  if (!config.metrics.enabled || config.metrics.port === undefined) return;
  const { port } = config.metrics;
  const aggregator = new AggregatorRegistry();
  try {
    const listener = await listenForMetrics({ host: config.host, port, exposition: () => aggregator.clusterMetrics(), contentType: aggregator.contentType });
    log.info({ url: listener.url }, 'metrics listening');
  } catch (error) {
    // The workers end with the primary.
    exitWith(explainStartupFailure(error, config, port, 'METRICS_PORT'));
  }
}

const config = configOrExit();
if (config.workers > 1 && cluster.isPrimary) {
  const log = pino({ level: config.logLevel });
  superviseWorkers(config.workers, log);
  await serveClusterMetrics(config, log);
} else await serve(config);
