import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type { TestProject } from 'vitest/node';
import { generatePrivateKeyPem } from '../src/key-generation.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server's URL, on a database the tests may create databases from. */
    postgresUrl: string;
    redisUrl: string;
    /** RSA private keys (PKCS#1 PEM) for the test processes to use instead of generating their own. */
    rsaKeyPool: string[];
  }
}

// More than any one test's server makes, so that no server gets the same key twice.
const RSA_KEY_POOL_SIZE = 32;

const SERVICES_SCRIPT = new URL('throwaway-services.sh', import.meta.url).pathname;

/** Builds dist/ once per run, as `npm run build` does, so that the end-to-end tests start the very server `npm start` runs. */
function build(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  execFileSync(process.execPath, ['scripts/bundle.js'], { stdio: 'inherit' });
}

/**
 * The PostgreSQL and Redis the suite runs against: those named by TEST_POSTGRES_URL and
 * TEST_REDIS_URL (as .ci/run starts them), else a throwaway pair started here and stopped at the
 * end. When they cannot be started the run fails, saying why: it never quietly tests less.
 */
interface Services {
  postgresUrl: string;
  redisUrl: string;
  stop: () => void;
}

function services(): Services {
  const { TEST_POSTGRES_URL: postgresUrl, TEST_REDIS_URL: redisUrl } = process.env;
  if (postgresUrl !== undefined && postgresUrl !== '' && redisUrl !== undefined && redisUrl !== '') {
    return { postgresUrl, redisUrl, stop: () => undefined };
  }
  const output = execFileSync(SERVICES_SCRIPT, ['start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const started = new Map(output.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  const [directory, startedPostgresUrl, startedRedisUrl] = ['TEST_SERVICES_DIR', 'TEST_POSTGRES_URL', 'TEST_REDIS_URL'].map((name) => started.get(name));
  if (directory === undefined || startedPostgresUrl === undefined || startedRedisUrl === undefined) {
    throw new Error(`${SERVICES_SCRIPT} printed no service URLs:\n${output}`);
  }
  return {
    postgresUrl: startedPostgresUrl,
    redisUrl: startedRedisUrl,
    stop: () => execFileSync(SERVICES_SCRIPT, ['stop', directory], { stdio: 'inherit' }),
  };
}

interface Prepared extends Services {
  rsaKeyPool: string[];
}

// Vitest runs a global setup once for the root and once for each project (vitest.config.ts): the
// build, the services and the keys are made by the first, shared with the others, and stopped by
// the last teardown.
const shared = globalThis as { jwksTestRun?: { prepared: Promise<Prepared>; users: number } };

async function prepare(): Promise<Prepared> {
  build();
  const started = services();
  try {
    return { ...started, rsaKeyPool: await Promise.all(Array.from({ length: RSA_KEY_POOL_SIZE }, () => generatePrivateKeyPem('RS256'))) };
  } catch (error) {
    started.stop();
    throw error;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  shared.jwksTestRun ??= { prepared: prepare(), users: 0 };
  const run = shared.jwksTestRun;
  run.users += 1;
  const { postgresUrl, redisUrl, rsaKeyPool, stop } = await run.prepared;
  project.provide('postgresUrl', postgresUrl);
  project.provide('redisUrl', redisUrl);
  project.provide('rsaKeyPool', rsaKeyPool);
  return () => {
    run.users -= 1;
    if (run.users === 0) stop();
  };
}
