/** The benchmark's measuring: the server under test, one autocannon run with the server's CPU and memory, and runs taking turns with their baseline. */
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SIGNING_ALGORITHMS } from '../src/keys/algorithms.js';
import { CONNECTIONS, RUN_SECONDS, SIDE_BY_SIDE_ROUNDS, TEN_YEARS, WARM_UP_SECONDS } from './run-settings.js';
import { ownCpuSeconds, processCpuSeconds, residentSetMb, startProcess, type RunningProcess } from './server-process.js';

const SERVER_ENTRY = fileURLToPath(new URL('../server/server.js', import.meta.url));

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors, time-outs and answers with a status other than the expected one. */
  errors: number;
  /**
   * Answers with the expected status in the warm-up and the measured run together: every request
   * the server answered as asked, to set beside what it recorded of them.
   */
  succeeded: number;
  /** The highest resident set size of the server process during the run, in MB. */
  serverRssMb: number;
  /** Cores kept busy during the run by the server process and by the load generator (this process). */
  serverCores: number;
  loadGeneratorCores: number;
}

export interface Scenario {
  name: string;
  ours: LoadResult;
  baselineName: string;
  baselinePerSecond: number;
  ratio: number;
}

export function startServer(databasePath: string, variables: Record<string, string> = {}): Promise<RunningProcess & { startupMs: number }> {
  return startProcess(
    SERVER_ENTRY,
    {
      ...variables,
      HOST: '127.0.0.1',
      DATABASE_URL: databasePath,
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
  body?: string;
  expectedStatus?: number;
  seconds?: number;
  warmUpSeconds?: number;
}

/** The answers of one autocannon run with the status `expected`, and with any other. */
function countAnswers({ statusCodeStats = {} }: autocannon.Result, expected: number): { asExpected: number; otherwise: number } {
  let asExpected = 0;
  let otherwise = 0;
  for (const [status, { count = 0 }] of Object.entries(statusCodeStats)) {
    if (Number(status) === expected) asExpected += count;
    else otherwise += count;
  }
  return { asExpected, otherwise };
}

export async function load(target: RunningProcess, path: string, options: LoadOptions = {}): Promise<LoadResult> {
  const request = { url: `${target.baseUrl}${path}`, method: options.method ?? 'GET', headers: options.headers ?? {}, ...(options.body === undefined ? {} : { body: options.body }), connections: CONNECTIONS };
  const warmUp = await autocannon({ ...request, duration: options.warmUpSeconds ?? WARM_UP_SECONDS });
  const stopSampling = sampleRss(target.child.pid);
  const [serverCpuBefore, ownCpuBefore, startedAt] = [processCpuSeconds(target.child.pid), ownCpuSeconds(), performance.now()];
  const result = await autocannon({ ...request, duration: options.seconds ?? RUN_SECONDS });
  const seconds = (performance.now() - startedAt) / 1000;
  const serverCores = Number(((processCpuSeconds(target.child.pid) - serverCpuBefore) / seconds).toFixed(2));
  const loadGeneratorCores = Number(((ownCpuSeconds() - ownCpuBefore) / seconds).toFixed(2));
  const serverRssMb = stopSampling();
  const expected = options.expectedStatus ?? 200;
  const answers = countAnswers(result, expected);
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    // autocannon counts time-outs among its errors already.
    errors: result.errors + answers.otherwise,
    succeeded: countAnswers(warmUp, expected).asExpected + answers.asExpected,
    serverRssMb,
    serverCores,
    loadGeneratorCores,
  };
}

export function withBaseline(name: string, ours: LoadResult, baselineName: string, baselinePerSecond: number): Scenario {
  return { name, ours, baselineName, baselinePerSecond, ratio: Number((ours.requestsPerSecond / baselinePerSecond).toFixed(2)) };
}

function median<T>(values: readonly T[], by: (value: T) => number): T {
  const sorted = [...values].sort((a, b) => by(a) - by(b));
  const middle = sorted[Math.floor(sorted.length / 2)];
  if (middle === undefined) throw new Error('no values');
  return middle;
}

/** Our route and its baseline in turns, `roundCount` rounds; the round with the median ratio is the one reported. */
export async function sideBySide(name: string, ours: () => Promise<LoadResult>, baselineName: string, baseline: () => Promise<LoadResult>, roundCount = SIDE_BY_SIDE_ROUNDS): Promise<Scenario> {
  const rounds: Scenario[] = [];
  for (let round = 0; round < roundCount; round += 1) {
    const baselineLoad = await baseline();
    // A baseline that fails requests measures nothing worth comparing with.
    if (baselineLoad.errors > 0) throw new Error(`the baseline of ${name} failed ${String(baselineLoad.errors)} requests`);
    rounds.push(withBaseline(name, await ours(), baselineName, baselineLoad.requestsPerSecond));
  }
  return median(rounds, (scenario) => scenario.ratio);
}
