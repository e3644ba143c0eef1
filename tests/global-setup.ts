import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { machineHasPostgres, machineHasRedis, registryPostgresBin, throwaway, type Service } from './throwaway-services.js';

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

/** Builds dist/ once per run (`npm run build`), so that the end-to-end tests start the very server `npm start` runs. */
function build(): void {
  execFileSync(process.execPath, ['scripts/build.js'], { stdio: 'inherit' });
}

const noService: Service = { url: '', stop: () => undefined };

function given(variable: 'TEST_POSTGRES_URL' | 'TEST_REDIS_URL'): Service | undefined {
  const url = process.env[variable];
  return url === undefined || url === '' ? undefined : { url, stop: () => undefined };
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
