/**
 * The standalone server's entry. It reads the configuration and binds the port at once, then
 * loads the service (most of the start) and serves the requests that came meanwhile: a client
 * that connects while the server starts waits, it is never refused. With WORKERS above 1, it is
 * the primary that runs that many of them on the port instead, or one of those workers. Only
 * light modules are imported statically here; the rest is imported once the port is bound.
 */
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type ServerConfig } from './config.js';
import { startupListener, type StartupListener } from './startup-listener.js';

function configOrExit(): ServerConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Invalid configuration: ${error.message}`);
    process.exit(1);
  }
}

async function listenOrExit(listener: StartupListener, config: ServerConfig): Promise<string> {
  try {
    return await listener.listen(config);
  } catch (error) {
    const { exitForStartupFailure } = await import('./startup-failure.js');
    return exitForStartupFailure(error, config);
  }
}

const config = configOrExit();
if (config.workers > 1 && cluster.isPrimary) {
  const { runPrimary } = await import('./cluster.js');
  await runPrimary(config);
} else {
  const listener = startupListener();
  // A worker of WORKERS binds once its app is ready instead: the primary's other workers serve
  // meanwhile, and the connections node:cluster would hand it are better served by them.
  const url = cluster.isWorker ? undefined : await listenOrExit(listener, config);
  const { serve } = await import('./standalone.js');
  await serve(config, listener, url);
}
