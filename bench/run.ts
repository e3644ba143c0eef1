/**
 * `npm run bench`: drives the built server on a loopback port with autocannon and sets every
 * figure beside its baseline, measured in the same run: the key endpoints against a bare Fastify
 * route sending the same bytes, `POST /auth` against the machine's signing limit. Then the same
 * with 100,000 expired keys and 1,000 users in the database, the time from launch to first answer
 * (npm start and node, new and existing database), the longest event-loop stall while keys are generated; then WORKERS and PostgreSQL (BENCH_POSTGRES_URL)
 * against one process on SQLite. Prints a table and writes bench/results.json.
 * `--quick` shortens every run and leaves out the large database (a smoke test, not figures to
 * report) and leaves results.json alone.
 * Any failed request (an error, a time-out, an unexpected status) fails the run.
 */
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import autocannon from 'autocannon';
import pg from 'pg';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../src/keys/algorithms.js';
import { systemClock } from '../src/common/clock.js';
import { openDatabase } from '../src/database/connection.js';
import { keyState } from '../src/keys/key-lifecycle.js';
import { createKeyStore } from '../src/keys/key-store.js';
import { createKeyring } from '../src/keys/keyring.js';
import { hashPassword } from '../src/users/passwords.js';
import { measureLaunch, type LaunchResults } from './launch.js';
import { ownCpuSeconds, processCpuSeconds, residentSetMb, startProcess, type RunningProcess } from './server-process.js';
import { measureSigningStrategies } from './signing-strategies.js';

const QUICK = process.argv.includes('--quick');
const RUN_SECONDS = QUICK ? 2 : 10;
const WARM_UP_SECONDS = QUICK ? 1 : 3;
// The key endpoints and their baseline take turns, so that drift in a shared machine's speed
// falls on both: three rounds each, the median of the per-round ratios reported.
const SIDE_BY_SIDE_ROUNDS = QUICK ? 1 : 3;
const SIDE_BY_SIDE_SECONDS = QUICK ? 2 : 5;
const CONNECTIONS = 50;
const CORES = availableParallelism();
const EXPIRED_KEYS = 100_000;
const USERS = 1_000;
const TEN_YEARS = String(10 * 365 * 24 * 3600);

const SERVER_ENTRY = fileURLToPath(new URL('../server/server.js', import.meta.url));
const BARE_SERVER_ENTRY = fileURLToPath(new URL('./bare-server.js', import.meta.url));
const SIGN_WORKER = new URL('./sign-worker.js', import.meta.url);
const RESULTS_FILE = fileURLToPath(new URL('../../bench/results.json', import.meta.url));

interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors, time-outs and answers with a status other than the expected one. */
  errors: number;
  /** The highest resident set size of the server process during the run, in MB. */
  serverRssMb: number;
  /** Cores kept busy during the run by the server process and by the load generator (this process). */
  serverCores: number;
  loadGeneratorCores: number;
}

interface Scenario {
  name: string;
  ours: LoadResult;
  baselineName: string;
  baselinePerSecond: number;
  ratio: number;
}

function startServer(databasePath: string, variables: Record<string, string> = {}): Promise<RunningProcess & { startupMs: number }> {
  return startProcess(
    SERVER_ENTRY,
    {
      ...variables,
      HOST: '127.0.0.1',
      DATABASE_URL: databasePath,
      LOG_LEVEL: 'warn',
      // The limiter would answer most of the load with 429s; it is measured as off.
      RATE_LIMIT_MAX: '0',
      ALGORITHMS: SIGNING_ALGORITHMS.join(','),
      // The 100,000 expired keys of the large database must not be pruned away under the benchmark.
      EXPIRED_KEY_RETENTION: TEN_YEARS,
    },
    '/.well-known/jwks.json',
  );
}

function sampleRss(pid: number | undefined): () => number {
  let highest = 0;
  const read = () => {
    try {
      highest = Math.max(highest, residentSetMb(pid));
    } catch {
      // The process has gone; keep what was read.
    }
  };
  read();
  const timer = setInterval(read, 200);
  return () => {
    clearInterval(timer);
    read();
    return Math.round(highest);
  };
}

interface LoadOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  expectedStatus?: number;
  seconds?: number;
  warmUpSeconds?: number;
}

async function load(target: RunningProcess, path: string, options: LoadOptions = {}): Promise<LoadResult> {
  const request = { url: `${target.baseUrl}${path}`, method: options.method ?? 'GET', headers: options.headers ?? {}, connections: CONNECTIONS };
  await autocannon({ ...request, duration: options.warmUpSeconds ?? WARM_UP_SECONDS });
  const stopSampling = sampleRss(target.child.pid);
  const [serverCpuBefore, ownCpuBefore, startedAt] = [processCpuSeconds(target.child.pid), ownCpuSeconds(), performance.now()];
  const result = await autocannon({ ...request, duration: options.seconds ?? RUN_SECONDS });
  const seconds = (performance.now() - startedAt) / 1000;
  const serverCores = Number(((processCpuSeconds(target.child.pid) - serverCpuBefore) / seconds).toFixed(2));
  const loadGeneratorCores = Number(((ownCpuSeconds() - ownCpuBefore) / seconds).toFixed(2));
  const serverRssMb = stopSampling();
  const expected = options.expectedStatus ?? 200;
  const answered = Object.entries(result.statusCodeStats ?? {}).reduce((total, [status, { count = 0 }]) => total + (Number(status) === expected ? 0 : count), 0);
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    // autocannon counts time-outs among its errors already.
    errors: result.errors + answered,
    serverRssMb,
    serverCores,
    loadGeneratorCores,
  };
}

/** Signatures per second of one thread looping over node:crypto's sign, times the cores: the most the machine can sign. */
async function signingLimit(algorithm: SigningAlgorithm, pem: string): Promise<number> {
  const worker = new Worker(SIGN_WORKER, { workerData: { algorithm, pem, seconds: QUICK ? 1 : 3 } });
  const [perSecond] = (await once(worker, 'message')) as [number];
  return Math.round(perSecond * CORES);
}

/** The active private key of each algorithm, read the way the server reads it. */
async function activeKeys(databasePath: string): Promise<Map<SigningAlgorithm, string>> {
  const db = await openDatabase(databasePath, { mustExist: true });
  try {
    const now = Math.floor(Date.now() / 1000);
    const served = await createKeyStore(db).loadServingKeys(now, []);
    const active = served.filter((key) => keyState(key, now) === 'active');
    return new Map(active.map((key) => [key.alg, key.privateKeyPem]));
  } finally {
    await db.destroy();
  }
}

/** Adds 100,000 expired keys (with lifecycles, older than every real one) and 1,000 users. */
async function seedLargeDatabase(databasePath: string): Promise<void> {
  const db = await openDatabase(databasePath, { mustExist: true });
  try {
    const template = await db.selectFrom('keys').select('key').limit(1).executeTakeFirstOrThrow();
    const passwordHash = await hashPassword('benchmark-password');
    const longAgo = Math.floor(Date.now() / 1000) - 30 * 24 * 3600;
    await db.transaction().execute(async (transaction) => {
      for (let first = 0; first < EXPIRED_KEYS; first += 500) {
        const exps = Array.from({ length: 500 }, (_, index) => longAgo - first - index);
        const rows = await transaction
          .insertInto('keys')
          .values(exps.map((exp) => ({ key: Buffer.from(template.key), exp })))
          .returning(['kid', 'exp'])
          .execute();
        await transaction
          .insertInto('key_lifecycle')
          .values(rows.map(({ kid, exp }) => ({ kid, alg: 'RS256', published_at: exp - 4500, activates_at: exp - 4500, retires_at: exp - 900 })))
          .execute();
      }
      for (let first = 0; first < USERS; first += 200) {
        const users = Array.from({ length: 200 }, (_, index) => `testor_${String(first + index).padStart(8, '0')}`);
        await transaction
          .insertInto('users')
          .values(users.map((username) => ({ username, email: `${username}@test.com`, password_hash: passwordHash })))
          .execute();
      }
    });
  } finally {
    await db.destroy();
  }
}

function withBaseline(name: string, ours: LoadResult, baselineName: string, baselinePerSecond: number): Scenario {
  return { name, ours, baselineName, baselinePerSecond, ratio: Number((ours.requestsPerSecond / baselinePerSecond).toFixed(2)) };
}

function median<T>(values: readonly T[], by: (value: T) => number): T {
  const sorted = [...values].sort((a, b) => by(a) - by(b));
  const middle = sorted[Math.floor(sorted.length / 2)];
  if (middle === undefined) throw new Error('no values');
  return middle;
}

/** Our route and its baseline in turns; the round with the median ratio is the one reported. */
async function sideBySide(name: string, ours: () => Promise<LoadResult>, baselineName: string, baseline: () => Promise<LoadResult>): Promise<Scenario> {
  const rounds: Scenario[] = [];
  for (let round = 0; round < SIDE_BY_SIDE_ROUNDS; round += 1) {
    const baselineLoad = await baseline();
    // A baseline that fails requests measures nothing worth comparing with.
    if (baselineLoad.errors > 0) throw new Error(`the baseline of ${name} failed ${String(baselineLoad.errors)} requests`);
    rounds.push(withBaseline(name, await ours(), baselineName, baselineLoad.requestsPerSecond));
  }
  return median(rounds, (scenario) => scenario.ratio);
}

async function measureDatabase(label: string, databasePath: string, directory: string) {
  const startups: number[] = [];
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const server = await startServer(databasePath);
    startups.push(Math.round(server.startupMs));
    await server.stop();
  }
  const server = await startServer(databasePath);
  const jwksResponse = await fetch(`${server.baseUrl}/.well-known/jwks.json`);
  const jwksBody = await jwksResponse.text();
  const etag = jwksResponse.headers.get('etag') ?? '';
  const kid = (JSON.parse(jwksBody) as { keys: { kid: string }[] }).keys[0]?.kid ?? '1';
  const kidBody = await (await fetch(`${server.baseUrl}/.well-known/${kid}.json`)).text();
  writeFileSync(join(directory, 'jwks.json'), jwksBody);
  writeFileSync(join(directory, 'kid.json'), kidBody);

  const scenarios: Scenario[] = [];
  console.error(`[${label}] key endpoints`);
  const kidPath = `/.well-known/${kid}.json`;
  const bare = await startProcess(BARE_SERVER_ENTRY, { ROUTES: JSON.stringify({ '/.well-known/jwks.json': join(directory, 'jwks.json'), [kidPath]: join(directory, 'kid.json') }) }, kidPath);
  const turn = { seconds: SIDE_BY_SIDE_SECONDS, warmUpSeconds: 1 };
  const bareFastify = 'bare Fastify, same bytes';
  scenarios.push(await sideBySide('GET /.well-known/jwks.json', () => load(server, '/.well-known/jwks.json', turn), bareFastify, () => load(bare, '/.well-known/jwks.json', turn)));
  scenarios.push(await sideBySide(`GET ${kidPath}`, () => load(server, kidPath, turn), bareFastify, () => load(bare, kidPath, turn)));
  await bare.stop();
  const notModified = { ...turn, headers: { 'if-none-match': etag }, expectedStatus: 304 };
  scenarios.push(await sideBySide('GET /.well-known/jwks.json, 304', () => load(server, '/.well-known/jwks.json', notModified), 'the same route, 200', () => load(server, '/.well-known/jwks.json', turn)));

  const keys = await activeKeys(databasePath);
  for (const algorithm of SIGNING_ALGORITHMS) {
    console.error(`[${label}] POST /auth?alg=${algorithm}`);
    const limit = await signingLimit(algorithm, keys.get(algorithm) ?? '');
    scenarios.push(withBaseline(`POST /auth?alg=${algorithm}`, await load(server, `/auth?alg=${algorithm}`, { method: 'POST' }), `crypto.sign loop × ${String(CORES)} cores`, limit));
  }
  await server.stop();
  startups.sort((a, b) => a - b);
  return { scenarios, startupMs: startups[1] ?? 0 };
}

/**
 * Scale-out on this machine: `POST /auth` (RS256, which also writes an auth log row per token)
 * and the JWKS with WORKERS=2, and on PostgreSQL (BENCH_POSTGRES_URL, a URL on which a database
 * may be created) with one and two workers, each taking turns with one process on SQLite.
 */
async function measureScaleOut(directory: string): Promise<Scenario[]> {
  const sqlite = join(directory, 'scale-out.db');
  const targets: { name: string; databaseUrl: string; workers: string }[] = [{ name: 'SQLite, WORKERS=2', databaseUrl: sqlite, workers: '2' }];
  const postgresServer = process.env.BENCH_POSTGRES_URL;
  let dropPostgres = (): Promise<void> => Promise.resolve();
  if (postgresServer === undefined || postgresServer === '') {
    console.error('BENCH_POSTGRES_URL is not set: the PostgreSQL scenarios are left out');
  } else {
    const name = `jwks_bench_${String(process.pid)}`;
    const client = new pg.Client({ connectionString: postgresServer });
    await client.connect();
    await client.query(`CREATE DATABASE ${name}`);
    const postgres = new URL(postgresServer);
    postgres.pathname = `/${name}`;
    targets.push({ name: 'PostgreSQL', databaseUrl: postgres.toString(), workers: '1' }, { name: 'PostgreSQL, WORKERS=2', databaseUrl: postgres.toString(), workers: '2' });
    dropPostgres = async () => {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    };
  }
  const scenarios: Scenario[] = [];
  const baseline = await startServer(sqlite, { ALGORITHMS: 'RS256' });
  try {
    const turn = { seconds: SIDE_BY_SIDE_SECONDS, warmUpSeconds: 1 };
    const auth = { ...turn, method: 'POST' as const };
    // A quick run takes the last, which has the most moving parts (both, when PostgreSQL is there).
    for (const target of QUICK ? targets.slice(-1) : targets) {
      console.error(`[scale-out] ${target.name}`);
      const server = await startServer(target.databaseUrl, { ALGORITHMS: 'RS256', WORKERS: target.workers });
      scenarios.push(await sideBySide(`POST /auth, ${target.name}`, () => load(server, '/auth', auth), 'SQLite, one process', () => load(baseline, '/auth', auth)));
      scenarios.push(
        await sideBySide(`GET /.well-known/jwks.json, ${target.name}`, () => load(server, '/.well-known/jwks.json', turn), 'SQLite, one process', () => load(baseline, '/.well-known/jwks.json', turn)),
      );
      await server.stop();
    }
  } finally {
    await baseline.stop();
    await dropPostgres();
  }
  return scenarios;
}

/**
 * The longest event-loop stall while keys are generated: a first start with every algorithm
 * (fifteen keys, generated, stored, imported and published), then rounds of rotations.
 */
async function keyGenerationStall(directory: string): Promise<{ firstStartMaxMs: number; rotationsMaxMs: number }> {
  const db = await openDatabase(join(directory, 'stall.db'));
  const keyStore = createKeyStore(db);
  const policy = { keyTtlSeconds: 3600, tokenTtlSeconds: 900, leadSeconds: 300 };
  const keyring = createKeyring({ keyStore, algorithms: [...SIGNING_ALGORITHMS] as [SigningAlgorithm, ...SigningAlgorithm[]], policy, expiredKeyRetentionSeconds: 86_400, clock: systemClock });
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  try {
    histogram.enable();
    await keyring.current();
    histogram.disable();
    const firstStartMaxMs = histogram.max / 1e6;
    histogram.reset();
    histogram.enable();
    for (let round = 0; round < (QUICK ? 1 : 5); round += 1) {
      for (const algorithm of SIGNING_ALGORITHMS) await keyStore.rotate(systemClock(), algorithm, policy);
      await keyring.reload();
      await keyring.current();
    }
    histogram.disable();
    return { firstStartMaxMs: Number(firstStartMaxMs.toFixed(1)), rotationsMaxMs: Number((histogram.max / 1e6).toFixed(1)) };
  } finally {
    await db.destroy();
  }
}

/**
 * Pruning on the large database, in a copy of it: a scheduler step with nothing due, then a first
 * prune of all 100,000 expired keys at once, with the longest event-loop stall while it runs.
 */
async function pruning(largeDatabase: string, directory: string): Promise<{ nothingDueMs: number; allDueMs: number; allDueMaxStallMs: number; pruned: number }> {
  const copy = join(directory, 'prune.db');
  copyFileSync(largeDatabase, copy);
  const db = await openDatabase(copy, { mustExist: true });
  try {
    const keyStore = createKeyStore(db);
    const now = systemClock();
    let startedAt = performance.now();
    await keyStore.prune(now, Number(TEN_YEARS));
    const nothingDueMs = performance.now() - startedAt;
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    startedAt = performance.now();
    const pruned = (await keyStore.prune(now, 24 * 3600)).length;
    const allDueMs = performance.now() - startedAt;
    histogram.disable();
    return { nothingDueMs: Number(nothingDueMs.toFixed(1)), allDueMs: Math.round(allDueMs), allDueMaxStallMs: Number((histogram.max / 1e6).toFixed(1)), pruned };
  } finally {
    await db.destroy();
  }
}

function printTable(label: string, scenarios: readonly Scenario[]): void {
  console.log(`\n${label}`);
  console.table(
    scenarios.map((scenario) => ({
      scenario: scenario.name,
      'req/s': scenario.ours.requestsPerSecond,
      baseline: `${String(scenario.baselinePerSecond)} (${scenario.baselineName})`,
      ratio: scenario.ratio,
      'p50 ms': scenario.ours.p50Ms,
      'p99 ms': scenario.ours.p99Ms,
      errors: scenario.ours.errors,
      'server RSS MB': scenario.ours.serverRssMb,
      'cores: server': scenario.ours.serverCores,
      'cores: load': scenario.ours.loadGeneratorCores,
    })),
  );
}

function printLaunch({ launches, nodeAloneMs, figures }: LaunchResults): void {
  console.log(`\nLaunch to first answer of POST /auth (median of ${String(launches)}; Node.js alone, node -e 0: ${String(nodeAloneMs)} ms)`);
  console.table(figures.map(({ command, database, portBoundMs, firstAnswerMs }) => ({ command, database, 'port bound ms': portBoundMs, 'first answer ms': firstAnswerMs })));
}

const directory = mkdtempSync(join(tmpdir(), 'jwks-bench-'));
try {
  const smallDatabase = join(directory, 'small.db');
  const largeDatabase = join(directory, 'large.db');
  // First, while this process is fresh: the garbage of seeding 100,000 rows would add its own pauses.
  const eventLoop = await keyGenerationStall(directory);
  console.error('launch to first answer');
  const launch = await measureLaunch(directory, QUICK ? 1 : 5);
  console.error('creating the databases');
  await (await startServer(smallDatabase)).stop();
  // A quick run leaves the large database out: seeding and measuring it is most of its time.
  if (!QUICK) {
    copyFileSync(smallDatabase, largeDatabase);
    await seedLargeDatabase(largeDatabase);
  }

  console.error('signing strategies');
  const signingStrategies = await measureSigningStrategies(QUICK ? 1 : 5);
  const prune = QUICK ? undefined : await pruning(largeDatabase, directory);
  const small = await measureDatabase('small', smallDatabase, directory);
  const large = QUICK ? undefined : await measureDatabase(`${String(EXPIRED_KEYS)} expired keys, ${String(USERS)} users`, largeDatabase, directory);
  const scaleOut = await measureScaleOut(directory);
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: CORES, model: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    settings: { runSeconds: RUN_SECONDS, warmUpSeconds: WARM_UP_SECONDS, connections: CONNECTIONS, quick: QUICK },
    small,
    large,
    largeVersusSmall: large?.scenarios.map((scenario, index) => ({
      scenario: scenario.name,
      ratio: Number((scenario.ours.requestsPerSecond / (small.scenarios[index]?.ours.requestsPerSecond ?? 1)).toFixed(2)),
    })),
    scaleOut,
    eventLoop,
    launch,
    prune,
    signingStrategies,
  };
  printTable('Small database (a few keys per algorithm)', small.scenarios);
  if (large !== undefined) printTable(`Large database (${String(EXPIRED_KEYS)} expired keys, ${String(USERS)} users)`, large.scenarios);
  printTable('Scale-out on this machine, against one process on SQLite', scaleOut);
  printLaunch(launch);
  console.log(`\nStart-up to first JWKS, existing database (median of 3): small ${String(small.startupMs)} ms, large ${large === undefined ? 'not measured' : `${String(large.startupMs)} ms`}`);
  console.log('\nSigning RS256 with 50 signatures in flight, no HTTP:');
  console.table(signingStrategies);
  if (prune !== undefined) {
    console.log(
      `Pruning ${String(EXPIRED_KEYS)} keys: a step with nothing due ${String(prune.nothingDueMs)} ms; all ${String(prune.pruned)} due at once ${String(prune.allDueMs)} ms, longest stall ${String(prune.allDueMaxStallMs)} ms`,
    );
  }
  console.log(`Longest event-loop stall while generating keys: first start ${String(eventLoop.firstStartMaxMs)} ms, rotations ${String(eventLoop.rotationsMaxMs)} ms`);
  // A quick run's numbers are not figures to report: they never replace the last full run's.
  if (QUICK) console.log('\nQuick run: bench/results.json left as it was.');
  else {
    writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`\nWritten to ${RESULTS_FILE}`);
  }
  const failed = [...small.scenarios, ...(large?.scenarios ?? []), ...scaleOut].filter((scenario) => scenario.ours.errors > 0);
  if (failed.length > 0) {
    console.error(`Requests failed in: ${failed.map((scenario) => scenario.name).join(', ')}`);
    process.exitCode = 1;
  }
} finally {
  rmSync(directory, { recursive: true, force: true });
}
