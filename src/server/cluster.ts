/**
 * WORKERS=N: a primary process that runs N server processes on one port (node:cluster shares the
 * listening socket and hands connections round-robin), replaces a worker that dies, and stops
 * them all on SIGTERM or SIGINT. It opens no database and serves nothing itself.
 */
import cluster, { type Worker } from 'node:cluster';
import { pino, type Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import type { ServerConfig } from './config.js';
import { listenForMetrics } from './metrics-server.js';
import { exitForStartupFailure } from './startup-failure.js';

/**
 * What the primary sends a worker to make it shut down gracefully. Not a signal: a terminal's
 * Ctrl-C, or a service manager, signals the whole process group, and a worker signalled twice
 * (by them and by the primary) would take the second signal as a demand to exit at once.
 */
export const SHUTDOWN_MESSAGE = 'jwks-server:shutdown';

/**
 * What a worker sends its primary once it serves. Not the worker's `listening` event: a worker
 * binds the port before its app loads, and a start that fails after that is still a failed start.
 */
export const READY_MESSAGE = 'jwks-server:ready';

// A worker that keeps dying is restarted after 1 s, 2 s, 4 s… up to 30 s, until one serves again.
const FIRST_RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;

/** Each worker runs the ordinary standalone server; they share keys through the database. */
function superviseWorkers(count: number, log: Logger): void {
  const live = new Set<Worker>();
  const ready = new WeakSet<Worker>();
  let everyWorkerStarted = false;
  let stopping = false;
  let failedRestarts = 0;

  function fork(): void {
    const worker = cluster.fork();
    live.add(worker);
    worker.on('message', (message) => {
      if (message !== READY_MESSAGE) return;
      // A worker that was still loading when the shutdown began may not have heard it.
      if (stopping) worker.send(SHUTDOWN_MESSAGE);
      ready.add(worker);
      failedRestarts = 0;
      everyWorkerStarted ||= live.size === count && [...live].every((each) => ready.has(each));
    });
  }

  function stop(signal: NodeJS.Signals): void {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the workers');
    for (const worker of live) worker.send(SHUTDOWN_MESSAGE);
  }

  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker);
    if (stopping) {
      if (live.size > 0) return;
      log.info('every worker has stopped');
      process.exit();
    }
    // Until every worker has served once, a worker that fails to start means a setting or the
    // database is wrong, and so would its replacement be: stop rather than restart it in a loop.
    if (!everyWorkerStarted) {
      log.error({ pid: worker.process.pid, code, signal }, 'a worker failed to start; stopping');
      process.exitCode = 1;
      stop('SIGTERM');
      if (live.size === 0) process.exit();
      return;
    }
    const delay = ready.has(worker) ? 0 : Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** failedRestarts);
    if (!ready.has(worker)) failedRestarts += 1;
    log.error({ pid: worker.process.pid, code, signal, restartInMs: delay }, 'a worker stopped; starting another');
    setTimeout(() => {
      if (!stopping) fork();
    }, delay);
  });

  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  log.info({ workers: count }, 'starting workers');
  for (let started = 0; started < count; started += 1) fork();
}

/** With METRICS_PORT, the primary serves every worker's metrics summed (counters, histograms). */
async function serveClusterMetrics(config: ServerConfig, log: Logger): Promise<void> {
  if (!config.metrics.enabled || config.metrics.port === undefined) return;
  const { port } = config.metrics;
  const aggregator = new AggregatorRegistry();
  try {
    const listener = await listenForMetrics({ host: config.host, port, exposition: () => aggregator.clusterMetrics(), contentType: aggregator.contentType });
    log.info({ url: listener.url }, 'metrics listening');
  } catch (error) {
    // The workers end with the primary.
    exitForStartupFailure(error, { ...config, port }, 'METRICS_PORT');
  }
}

/** The primary of WORKERS: starts and supervises the workers, and serves their metrics. */
export async function runPrimary(config: ServerConfig): Promise<void> {
  const log = pino({ level: config.logLevel });
  superviseWorkers(config.workers, log);
  await serveClusterMetrics(config, log);
}
