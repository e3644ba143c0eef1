/**
 * WORKERS=N: a primary process that runs N server processes on one port (node:cluster shares the
 * listening socket and hands connections round-robin), replaces a worker that dies, and stops
 * them all on SIGTERM or SIGINT. It opens no database and serves nothing itself.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

/** Each worker runs the ordinary standalone server; they share keys through the database. */
export function superviseWorkers(count: number, log: Logger): void {
  let stopping = false;
  const listening = new WeakSet<Worker>();

  function fork(): void {
    const worker = cluster.fork();
    worker.on('listening', () => listening.add(worker));
  }

  function stop(signal: NodeJS.Signals): void {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the workers');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  }

  cluster.on('exit', (worker, code, signal) => {
    const remaining = Object.keys(cluster.workers ?? {}).length;
    if (stopping) {
      if (remaining === 0) {
        log.info('every worker has stopped');
        process.exit();
      }
      return;
    }
    // A worker that never listened failed to start (configuration, database): so would its
    // replacement, so stop rather than restart it in a loop.
    if (!listening.has(worker)) {
      log.error({ pid: worker.process.pid, code, signal }, 'a worker failed to start; stopping');
      process.exitCode = 1;
      stop('SIGTERM');
      if (remaining === 0) process.exit();
      return;
    }
    log.error({ pid: worker.process.pid, code, signal }, 'a worker died; starting another');
    fork();
  });

  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  log.info({ workers: count }, 'starting workers');
  for (let started = 0; started < count; started += 1) fork();
}
