/**
 * The standalone server: configuration from the environment, the app, and a graceful shutdown;
 * with WORKERS above 1, a primary process that runs that many of them on the port.
 */
import cluster from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { buildApp } from './app.js';
import { SHUTDOWN_MESSAGE, superviseWorkers } from './cluster.js';
import { ConfigError, loadConfig, type ServerConfig } from './config.js';
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
  });

  const worker = cluster.isWorker;
  // A worker stops when its primary tells it to (src/cluster.ts), and ignores the signals that
  // reach its whole process group; should the primary die, node:cluster ends the worker.
  const shutdown = closeWithGrace({ delay: 10_000, ...(worker ? { skip: ['SIGINT', 'SIGTERM'] } : {}) }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal: signal ?? 'primary' }, 'shutting down');
    await app.close();
  });
  if (worker) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);
    process.on('message', (message) => {
      if (message === SHUTDOWN_MESSAGE) shutdown.close();
    });
  }

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    const explanation = describeStartupFailure(error, config);
    if (explanation === undefined) throw error;
    console.error(`Cannot start: ${explanation}`);
    await app.close();
    process.exit(1);
  }
}

const config = configOrExit();
if (config.workers > 1 && cluster.isPrimary) superviseWorkers(config.workers, pino({ level: config.logLevel }));
else await serve(config);
