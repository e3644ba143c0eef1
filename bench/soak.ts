/**
 * `npm run soak`: a steady mixed load on the built server (`dist/server/server.js`, its default
 * configuration, rate limit on) on 127.0.0.1 for a bounded time, watching the server's memory.
 * Mostly key fetches and tokens, a few registrations, at a fixed offered rate (`--rate`, 1,000
 * requests a second by default) sent from many loopback addresses, each below the rate limit, and
 * from one client over it, whose excess gets 429s. The first `--warmup` seconds (10) are not
 * measured; the whole run lasts `--duration` seconds (60); `--quick` is 15 s with 5 of warm-up.
 * Prints a table and writes bench/soak-results.json (a quick run leaves it alone, as the
 * benchmark does). Fails on any failed request (an error, a time-out, a status other than the
 * endpoint's own or a 429 from a rate-limited route, a body that is not what the endpoint sends),
 * on requests not sent because too many were in flight, or on the server's RSS growing 10 % or more
 * after warm-up (its floor, without argon2's passing working memory: see RSS_FLOOR_SECONDS).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openDatabase } from '../src/database/connection.js';
import { ownCpuSeconds, processCpuSeconds, residentSetMb, startProcess, type RunningProcess } from './server-process.js';

const SERVER_ENTRY = fileURLToPath(new URL('../server/server.js', import.meta.url));
const RESULTS_FILE = fileURLToPath(new URL('../../bench/soak-results.json', import.meta.url));

const ENDPOINTS = ['GET /.well-known/jwks.json', 'GET /.well-known/{kid}.json', 'POST /auth', 'POST /register'] as const;
type Endpoint = (typeof ENDPOINTS)[number];

/** What each endpoint answers when it does its job. */
const SUCCESS_STATUS: Record<Endpoint, number> = { 'GET /.well-known/jwks.json': 200, 'GET /.well-known/{kid}.json': 200, 'POST /auth': 200, 'POST /register': 201 };
/** The routes the server limits, by default to 10 requests a second per client IP: a 429 from them is the limiter working. */
const RATE_LIMITED: ReadonlySet<Endpoint> = new Set<Endpoint>(['POST /auth', 'POST /register']);
/**
 * Shares of the offered rate: verifiers fetching keys, clients getting tokens, now and then a new
 * user. Password hashes and checks (argon2, 11 ms of a core each) are what costs the server most.
 */
const MIX: Record<Endpoint, number> = { 'GET /.well-known/jwks.json': 0.6, 'GET /.well-known/{kid}.json': 0.2, 'POST /auth': 0.195, 'POST /register': 0.005 };
/** One client asks for more than the limit allows, so that the limiter has work: 10 of its 30 token requests a second pass, and 10 of its 12 registrations. */
const GREEDY_CLIENT = '127.0.0.2';
const GREEDY_PER_SECOND: Partial<Record<Endpoint, number>> = { 'POST /auth': 30, 'POST /register': 12 };
/**
 * Every other client makes at most 4 requests a second on each rate-limited route, well under the
 * limit, evenly spaced: any 429 they get says the generator or the server fell behind.
 */
const WELL_BEHAVED_PER_SECOND = 4;
const FIRST_WELL_BEHAVED = 10;
const LAST_LOOPBACK = 254;
const TICK_MS = 10;
/** More than this many seconds of load in flight means the server has fallen far behind: further requests are counted as not sent rather than queued. */
const BACKLOG_SECONDS = 2;
const REQUEST_TIMEOUT_MS = 10_000;
/** The latest registered users, whose passwords `POST /auth` goes on using. */
const KEPT_CREDENTIALS = 1000;
const RSS_GROWTH_LIMIT_PERCENT = 10;
/**
 * Each password hash or check in flight holds argon2's 19 MiB (m = 19456 KiB) until it ends, so one
 * reading of the RSS says mostly how many were running at that instant (0 to 4, on libuv's four
 * threads). Growth is measured on the lowest reading of the last 5 s of each phase (of its second
 * half, if shorter): with ten readings a second, some fall where no hash is running.
 */
const RSS_FLOOR_SECONDS = 5;

const USAGE = 'usage: node dist/bench/soak.js [--quick] [--duration <seconds>] [--warmup <seconds>] [--rate <requests per second>]';

interface Settings {
  durationSeconds: number;
  warmUpSeconds: number;
  perSecond: number;
  quick: boolean;
}

function positiveNumber(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${flag} must be a positive number of ${flag === 'rate' ? 'requests per second' : 'seconds'} (got "${value}")`);
  return parsed;
}

function readSettings(): Settings {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, duration: { type: 'string' }, warmup: { type: 'string' }, rate: { type: 'string' } } });
  const settings = {
    durationSeconds: positiveNumber('duration', values.duration, values.quick ? 15 : 60),
    warmUpSeconds: positiveNumber('warmup', values.warmup, values.quick ? 5 : 10),
    perSecond: positiveNumber('rate', values.rate, 1000),
    quick: values.quick,
  };
  if (settings.warmUpSeconds >= settings.durationSeconds) throw new Error(`--warmup (${String(settings.warmUpSeconds)}) must be shorter than --duration (${String(settings.durationSeconds)}), which includes it`);
  return settings;
}

interface Credentials {
  username: string;
  password: string;
}

/** What the load has learnt from the server's answers: the kids it publishes, the users it registered. */
interface LoadState {
  runId: string;
  kids: string[];
  credentials: Credentials[];
  registrations: number;
}

interface Outgoing {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  /** Why a success answer's body is not what the endpoint sends, if it is not. */
  check(body: string): string | undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function publishedKids(body: string): string[] | undefined {
  const document = parseJson(body);
  if (!isRecord(document) || !Array.isArray(document.keys) || document.keys.length === 0) return undefined;
  const kids = document.keys.map((key: unknown) => (isRecord(key) && typeof key.kid === 'string' ? key.kid : undefined));
  return kids.every((kid) => kid !== undefined) ? kids : undefined;
}

function tokenClaims(body: string): Record<string, unknown> | undefined {
  const reply = parseJson(body);
  if (!isRecord(reply) || typeof reply.token !== 'string') return undefined;
  const [, payload] = reply.token.split('.');
  const claims = parseJson(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
  return isRecord(claims) ? claims : undefined;
}

function jwksRequest(state: LoadState): Outgoing {
  return {
    method: 'GET',
    path: '/.well-known/jwks.json',
    check: (body) => {
      const kids = publishedKids(body);
      if (kids === undefined) return 'not a JWKS';
      // Keys rotate: the next per-kid requests ask for what is published now.
      state.kids = kids;
      return undefined;
    },
  };
}

function kidRequest(state: LoadState, sequence: number): Outgoing {
  const kid = state.kids[sequence % state.kids.length] ?? '';
  return {
    method: 'GET',
    path: `/.well-known/${encodeURIComponent(kid)}.json`,
    check: (body) => (publishedKids(body)?.join() === kid ? undefined : `not the JWKS of kid ${kid}`),
  };
}

/** One token in ten from an expired key; one in twenty for a registered user with the password, checked with argon2; the rest for names nobody registered. */
function authRequest(state: LoadState, sequence: number): Outgoing {
  const expired = sequence % 10 === 0;
  const user = sequence % 20 === 5 ? state.credentials[Math.floor(sequence / 20) % state.credentials.length] : undefined;
  const credentials = user ?? { username: `visitor_${String(sequence % 5000)}`, password: 'not-registered' };
  return {
    method: 'POST',
    path: expired ? '/auth?expired=true' : '/auth',
    body: JSON.stringify(credentials),
    check: (body) => {
      const claims = tokenClaims(body);
      if (claims === undefined || typeof claims.exp !== 'number') return 'not a token';
      if (claims.sub !== credentials.username) return 'a token for another subject';
      if (expired !== claims.exp * 1000 < Date.now()) return expired ? 'an unexpired token for ?expired=true' : 'an expired token';
      const passwordChecked = Array.isArray(claims.amr) && claims.amr.includes('pwd');
      return passwordChecked === (user !== undefined) ? undefined : 'a token whose amr does not say whether the password was checked';
    },
  };
}

function registerRequest(state: LoadState): Outgoing {
  state.registrations += 1;
  const username = `soak_${state.runId}_${String(state.registrations)}`;
  return {
    method: 'POST',
    path: '/register',
    body: JSON.stringify({ username, email: `${username}@soak.test` }),
    check: (body) => {
      const reply = parseJson(body);
      if (!isRecord(reply) || typeof reply.password !== 'string') return 'no password';
      state.credentials.push({ username, password: reply.password });
      if (state.credentials.length > KEPT_CREDENTIALS) state.credentials.shift();
      return undefined;
    },
  };
}

function outgoing(endpoint: Endpoint, state: LoadState, sequence: number): Outgoing {
  switch (endpoint) {
    case 'GET /.well-known/jwks.json':
      return jwksRequest(state);
    case 'GET /.well-known/{kid}.json':
      return kidRequest(state, sequence);
    case 'POST /auth':
      return authRequest(state, sequence);
    case 'POST /register':
      return registerRequest(state);
  }
}

interface Answer {
  status: number;
  body: string;
}

/** One request over the keep-alive `agent`, from `localAddress`: the client IP the server sees and rate-limits. */
function exchange(agent: Agent, port: number, localAddress: string, { method, path, body }: Outgoing): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const sent = request({ host: '127.0.0.1', port, method, path, headers, agent, localAddress, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      response.on('error', reject);
    });
    sent.on('error', reject);
    sent.end(body);
  });
}

function failureOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'AbortError') return `time-out (${String(REQUEST_TIMEOUT_MS / 1000)} s)`;
  return (error as NodeJS.ErrnoException).code ?? error.message;
}

interface EndpointStats {
  requests: number;
  statuses: Map<number, number>;
  limited: number;
  /** 429s to the clients that keep under the limit: the limiter counting them together with another, or a stall bunching their requests. */
  limitedWellBehaved: number;
  /** Each kind of failure (`status 500`, `ECONNRESET`, `time-out`, a wrong body) and how often. */
  failures: Map<string, number>;
  /** Microseconds from sending to the whole answer, of the answers that did the endpoint's job. */
  latency: RecordableHistogram;
}

interface PhaseStats {
  endpoints: Record<Endpoint, EndpointStats>;
  /** Requests due while BACKLOG_SECONDS of load were in flight, never sent. */
  unsent: number;
}

function phaseStats(): PhaseStats {
  const endpoint = (): EndpointStats => ({ requests: 0, statuses: new Map(), limited: 0, limitedWellBehaved: 0, failures: new Map(), latency: createHistogram() });
  return {
    endpoints: { 'GET /.well-known/jwks.json': endpoint(), 'GET /.well-known/{kid}.json': endpoint(), 'POST /auth': endpoint(), 'POST /register': endpoint() },
    unsent: 0,
  };
}

function countUp<K>(counts: Map<K, number>, key: K): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function recordAnswer(stats: EndpointStats, endpoint: Endpoint, request: Outgoing, { status, body }: Answer, from: { greedy: boolean; microseconds: number }): void {
  countUp(stats.statuses, status);
  if (status === 429 && RATE_LIMITED.has(endpoint)) {
    stats.limited += 1;
    if (!from.greedy) stats.limitedWellBehaved += 1;
    return;
  }
  if (status !== SUCCESS_STATUS[endpoint]) {
    countUp(stats.failures, `status ${String(status)}`);
    return;
  }
  const problem = request.check(body);
  if (problem !== undefined) countUp(stats.failures, problem);
  else stats.latency.record(Math.max(1, Math.round(from.microseconds)));
}

interface Stream {
  endpoint: Endpoint;
  perSecond: number;
  /** The client addresses it sends from, in turn. */
  addresses: readonly string[];
  /** Connections of its own, so that slow password checks never hold key fetches up in the generator. */
  agent: Agent;
  scheduled: number;
}

const keepAliveAgent = () => new Agent({ keepAlive: true, maxSockets: 32 });

function loadStreams(perSecond: number): { streams: Stream[]; wellBehavedClients: number } {
  const limitedPerSecond = Math.max(...ENDPOINTS.filter((endpoint) => RATE_LIMITED.has(endpoint)).map((endpoint) => MIX[endpoint] * perSecond));
  const wellBehavedClients = Math.min(LAST_LOOPBACK - FIRST_WELL_BEHAVED + 1, Math.max(8, Math.ceil(limitedPerSecond / WELL_BEHAVED_PER_SECOND)));
  const addresses = Array.from({ length: wellBehavedClients }, (_, index) => `127.0.0.${String(FIRST_WELL_BEHAVED + index)}`);
  const streams: Stream[] = ENDPOINTS.map((endpoint) => ({ endpoint, perSecond: MIX[endpoint] * perSecond, addresses, agent: keepAliveAgent(), scheduled: 0 }));
  for (const [endpoint, greedyPerSecond] of Object.entries(GREEDY_PER_SECOND) as [Endpoint, number][]) {
    streams.push({ endpoint, perSecond: greedyPerSecond, addresses: [GREEDY_CLIENT], agent: keepAliveAgent(), scheduled: 0 });
  }
  return { streams, wellBehavedClients };
}

/** A second of RSS readings: the last one, at `seconds` into the run, and the lowest and highest of the second. */
interface RssSample {
  seconds: number;
  rssMb: number;
  lowestMb: number;
  highestMb: number;
}

const RSS_READINGS_PER_SECOND = 10;
const tenths = (value: number) => Number(value.toFixed(1));

/** Reads the server's RSS ten times a second; `mark()` closes the current second early, at a phase's end. */
function watchRss(pid: number | undefined, elapsedSeconds: () => number): { mark(): RssSample; stop(): RssSample[] } {
  const samples: RssSample[] = [];
  let [lowest, highest, readings] = [Infinity, 0, 0];
  const read = () => {
    const rssMb = residentSetMb(pid);
    [lowest, highest, readings] = [Math.min(lowest, rssMb), Math.max(highest, rssMb), readings + 1];
    return rssMb;
  };
  const mark = () => {
    const sample = { seconds: tenths(elapsedSeconds()), rssMb: tenths(read()), lowestMb: tenths(lowest), highestMb: tenths(highest) };
    samples.push(sample);
    [lowest, highest, readings] = [Infinity, 0, 0];
    return sample;
  };
  const timer = setInterval(() => {
    try {
      if (readings + 1 >= RSS_READINGS_PER_SECOND) mark();
      else read();
    } catch {
      // The server has gone: the load stops on its exit.
    }
  }, 1000 / RSS_READINGS_PER_SECOND);
  return {
    mark,
    stop: () => {
      clearInterval(timer);
      return samples;
    },
  };
}

interface LoadRun {
  warmUp: PhaseStats;
  measured: PhaseStats;
  measuredSeconds: number;
  wellBehavedClients: number;
  maxInFlight: number;
  rss: { idle: RssSample; warmUpEnd: RssSample; end: RssSample; samples: RssSample[] };
  cores: { server: number; loadGenerator: number };
  databaseMb: { warmUpEnd: number; end: number };
}

function databaseMb(path: string): number {
  const bytes = ['', '-wal'].reduce((total, suffix) => {
    try {
      return total + statSync(`${path}${suffix}`).size;
    } catch {
      return total;
    }
  }, 0);
  return Number((bytes / 2 ** 20).toFixed(1));
}

/** Offers the load at a steady rate: each tick sends what is due since the start, whatever the answers' pace (no coordinated omission). */
async function runLoad(server: RunningProcess, databasePath: string, settings: Settings): Promise<LoadRun> {
  const port = Number(new URL(server.baseUrl).port);
  const pid = server.child.pid;
  const jwks = await (await fetch(`${server.baseUrl}/.well-known/jwks.json`)).text();
  const state: LoadState = { runId: Date.now().toString(36), kids: publishedKids(jwks) ?? [], credentials: [], registrations: 0 };
  const { streams, wellBehavedClients } = loadStreams(settings.perSecond);
  const warmUp = phaseStats();
  const measured = phaseStats();
  let phase = warmUp;
  const inFlight = new Set<Promise<void>>();

  const send = (stream: Stream) => {
    const stats = phase.endpoints[stream.endpoint];
    const address = stream.addresses[stream.scheduled % stream.addresses.length] ?? GREEDY_CLIENT;
    const request = outgoing(stream.endpoint, state, stream.scheduled);
    const sentAt = performance.now();
    stats.requests += 1;
    const pending = exchange(stream.agent, port, address, request).then(
      (answer) => {
        recordAnswer(stats, stream.endpoint, request, answer, { greedy: address === GREEDY_CLIENT, microseconds: (performance.now() - sentAt) * 1000 });
      },
      (error: unknown) => {
        countUp(stats.failures, failureOf(error));
      },
    );
    inFlight.add(pending);
    void pending.finally(() => inFlight.delete(pending));
  };

  const startedAt = performance.now();
  const elapsedSeconds = () => (performance.now() - startedAt) / 1000;
  const rss = watchRss(pid, elapsedSeconds);
  // The phases end early, with the reason, should the server exit under the load.
  const serverGone = new AbortController();
  server.child.once('exit', (code, signal) => {
    serverGone.abort(new Error(`the server exited during the soak (code ${String(code)}, signal ${String(signal)})`));
  });
  const phaseEnd = (seconds: number) =>
    delay(seconds * 1000, undefined, { signal: serverGone.signal }).catch(() => {
      serverGone.signal.throwIfAborted();
    });
  const idle = rss.mark();
  const maxInFlight = Math.ceil(BACKLOG_SECONDS * streams.reduce((total, stream) => total + stream.perSecond, 0));
  const ticker = setInterval(() => {
    const elapsed = elapsedSeconds();
    for (const stream of streams) {
      for (let due = Math.floor(elapsed * stream.perSecond) - stream.scheduled; due > 0; due -= 1) {
        if (inFlight.size < maxInFlight) send(stream);
        else phase.unsent += 1;
        stream.scheduled += 1;
      }
    }
  }, TICK_MS);
  try {
    await phaseEnd(settings.warmUpSeconds);
    phase = measured;
    const warmUpEnd = rss.mark();
    const databaseWarmUpEnd = databaseMb(databasePath);
    const [serverCpu, ownCpu, measureStart] = [processCpuSeconds(pid), ownCpuSeconds(), performance.now()];
    await phaseEnd(settings.durationSeconds - settings.warmUpSeconds);
    clearInterval(ticker);
    const end = rss.mark();
    const samples = rss.stop();
    const measuredSeconds = (performance.now() - measureStart) / 1000;
    const cores = {
      server: Number(((processCpuSeconds(pid) - serverCpu) / measuredSeconds).toFixed(2)),
      loadGenerator: Number(((ownCpuSeconds() - ownCpu) / measuredSeconds).toFixed(2)),
    };
    await Promise.all(inFlight);
    return {
      warmUp,
      measured,
      measuredSeconds: Number(measuredSeconds.toFixed(1)),
      wellBehavedClients,
      maxInFlight,
      rss: { idle, warmUpEnd, end, samples },
      cores,
      databaseMb: { warmUpEnd: databaseWarmUpEnd, end: databaseMb(databasePath) },
    };
  } finally {
    clearInterval(ticker);
    rss.stop();
    for (const stream of streams) stream.agent.destroy();
  }
}

/** The lowest reading of the RSS_FLOOR_SECONDS (at most half the phase) up to `until`, the end of a phase `phaseSeconds` long. */
function rssFloorMb(samples: readonly RssSample[], until: RssSample, phaseSeconds: number): number {
  const from = until.seconds - Math.min(RSS_FLOOR_SECONDS, phaseSeconds / 2);
  const window = samples.filter((sample) => sample.seconds > from && sample.seconds <= until.seconds);
  return Math.min(...window.map((sample) => sample.lowestMb));
}

const percentGrowth = (from: number, to: number) => Number((((to - from) / from) * 100).toFixed(1));

async function countRows(databasePath: string): Promise<{ users: number; authLogs: number }> {
  const db = await openDatabase(databasePath, { mustExist: true });
  try {
    const count = async (table: 'users' | 'auth_logs') => Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('rows')).executeTakeFirstOrThrow()).rows);
    return { users: await count('users'), authLogs: await count('auth_logs') };
  } finally {
    await db.destroy();
  }
}

function milliseconds(histogram: RecordableHistogram, percentile: number): number | undefined {
  return histogram.count === 0 ? undefined : Number((histogram.percentile(percentile) / 1000).toFixed(1));
}

function endpointSummary(endpoint: Endpoint, stats: EndpointStats, seconds: number) {
  return {
    endpoint,
    requests: stats.requests,
    perSecond: Math.round(stats.requests / seconds),
    statuses: Object.fromEntries([...stats.statuses].sort(([a], [b]) => a - b)),
    rateLimited: stats.limited,
    rateLimitedWellBehaved: stats.limitedWellBehaved,
    errors: [...stats.failures.values()].reduce((total, each) => total + each, 0),
    failures: Object.fromEntries(stats.failures),
    p50Ms: milliseconds(stats.latency, 50),
    p99Ms: milliseconds(stats.latency, 99),
    maxMs: stats.latency.count === 0 ? undefined : Number((stats.latency.max / 1000).toFixed(1)),
  };
}

function phaseSummary(stats: PhaseStats, seconds: number) {
  const endpoints = ENDPOINTS.map((endpoint) => endpointSummary(endpoint, stats.endpoints[endpoint], seconds));
  const total = (pick: (summary: (typeof endpoints)[number]) => number) => endpoints.reduce((sum, summary) => sum + pick(summary), 0);
  return {
    endpoints,
    requests: total((summary) => summary.requests),
    rateLimited: total((summary) => summary.rateLimited),
    rateLimitedWellBehaved: total((summary) => summary.rateLimitedWellBehaved),
    errors: total((summary) => summary.errors),
    unsent: stats.unsent,
  };
}

const grouped = (value: number) => value.toLocaleString('en-US');

function printReport(results: ReturnType<typeof soakResults>): void {
  const { settings, measured, warmUp, rss, cores, database } = results;
  console.log(
    `\nSoak: ${String(results.measuredSeconds)} s measured after ${String(settings.warmUpSeconds)} s of warm-up; ${grouped(settings.perSecond)} requests/s offered from ${String(results.wellBehavedClients)} loopback clients, and ${Object.values(GREEDY_PER_SECOND).join(' + ')}/s on POST /auth + /register from one client over the limit`,
  );
  console.table(
    measured.endpoints.map((summary) => ({
      endpoint: summary.endpoint,
      requests: summary.requests,
      'req/s': summary.perSecond,
      statuses: Object.entries(summary.statuses)
        .map(([status, count]) => `${status}: ${grouped(count)}`)
        .join(', '),
      '429s': summary.rateLimited,
      errors: summary.errors,
      'p50 ms': summary.p50Ms,
      'p99 ms': summary.p99Ms,
      'max ms': summary.maxMs,
    })),
  );
  console.log(`Latencies are of the answers that did the endpoint's job (2xx), from sending to the last byte.`);
  for (const [label, phase] of [['warm-up', warmUp], ['measured', measured]] as const) {
    for (const summary of phase.endpoints.filter((each) => each.errors > 0)) console.log(`Failed (${label}): ${summary.endpoint}: ${JSON.stringify(summary.failures)}`);
  }
  console.log(`Measured: ${grouped(measured.requests)} requests, ${grouped(measured.rateLimited)} 429s (${grouped(measured.rateLimitedWellBehaved)} to clients under the limit), ${grouped(measured.errors)} errors, ${grouped(measured.unsent)} not sent (over ${grouped(results.maxInFlight)} in flight)`);
  console.log(`Warm-up:  ${grouped(warmUp.requests)} requests, ${grouped(warmUp.rateLimited)} 429s (${grouped(warmUp.rateLimitedWellBehaved)} to clients under the limit), ${grouped(warmUp.errors)} errors, ${grouped(warmUp.unsent)} not sent`);
  console.log(
    `Cores used while measured: server ${String(cores.server)}, load generator ${String(cores.loadGenerator)} (of ${String(results.machine.cpus)}); the machine's load average ${results.machine.loadAverage.join(' before, ')} after`,
  );
  console.log(
    `Server RSS, one reading: idle ${String(rss.idleMb)} MB, end of warm-up ${String(rss.warmUpEndMb)} MB, end ${String(rss.endMb)} MB, max ${String(rss.maxMb)} MB (${String(rss.readingGrowthPercent)} %)`,
  );
  console.log(
    `Server RSS, lowest of each phase's last ${String(RSS_FLOOR_SECONDS)} s: end of warm-up ${String(rss.floorWarmUpEndMb)} MB, end ${String(rss.floorEndMb)} MB: growth after warm-up ${String(rss.growthPercent)} % (goal under ${String(RSS_GROWTH_LIMIT_PERCENT)} %; each argon2 hash in flight adds 19 MiB to a reading)`,
  );
  console.log(`Database: ${grouped(database.users)} users, ${grouped(database.authLogs)} auth_logs rows; file and WAL ${String(database.warmUpEndMb)} MB at end of warm-up, ${String(database.endMb)} MB at the end`);
}

/** `loadAverageBefore`: the machine's 1-minute load average before the run; other work on the same cores slows the server down. */
function soakResults(settings: Settings, run: LoadRun, rows: { users: number; authLogs: number }, loadAverageBefore: number) {
  const { rss } = run;
  const floorWarmUpEndMb = rssFloorMb(rss.samples, rss.warmUpEnd, settings.warmUpSeconds);
  const floorEndMb = rssFloorMb(rss.samples, rss.end, run.measuredSeconds);
  const growthPercent = percentGrowth(floorWarmUpEndMb, floorEndMb);
  const measured = phaseSummary(run.measured, run.measuredSeconds);
  const warmUp = phaseSummary(run.warmUp, settings.warmUpSeconds);
  const failures = [
    ...(warmUp.errors + measured.errors > 0 ? [`${String(warmUp.errors + measured.errors)} failed requests`] : []),
    ...(warmUp.unsent + measured.unsent > 0 ? [`${String(warmUp.unsent + measured.unsent)} requests not sent: the server fell behind`] : []),
    ...(growthPercent >= RSS_GROWTH_LIMIT_PERCENT ? [`server RSS grew ${String(growthPercent)} % after warm-up`] : []),
  ];
  return {
    date: new Date().toISOString(),
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model ?? 'unknown', node: process.version, loadAverage: [loadAverageBefore, loadavg()[0] ?? 0].map((each) => Number(each.toFixed(2))) },
    settings: { ...settings, greedyClientPerSecond: GREEDY_PER_SECOND, mix: MIX, server: 'its defaults (RS256, 10 requests per 1000 ms per IP on the limited routes) but HOST 127.0.0.1, LOG_LEVEL warn, a new SQLite file' },
    measuredSeconds: run.measuredSeconds,
    maxInFlight: run.maxInFlight,
    wellBehavedClients: run.wellBehavedClients,
    measured,
    warmUp,
    cores: run.cores,
    rss: {
      idleMb: rss.idle.rssMb,
      warmUpEndMb: rss.warmUpEnd.rssMb,
      endMb: rss.end.rssMb,
      maxMb: Math.max(...rss.samples.map((sample) => sample.highestMb)),
      readingGrowthPercent: percentGrowth(rss.warmUpEnd.rssMb, rss.end.rssMb),
      floorWarmUpEndMb,
      floorEndMb,
      growthPercent,
      samples: rss.samples,
    },
    database: { ...rows, warmUpEndMb: run.databaseMb.warmUpEnd, endMb: run.databaseMb.end },
    failures,
  };
}

let settings: Settings;
try {
  settings = readSettings();
} catch (error) {
  console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  process.exit(2);
}

const loadAverageBefore = loadavg()[0] ?? 0;
const directory = mkdtempSync(join(tmpdir(), 'jwks-soak-'));
try {
  const databasePath = join(directory, 'soak.db');
  // The server's defaults but for where it listens, its database and its chatter: the rate limit is on.
  const server = await startProcess(SERVER_ENTRY, { HOST: '127.0.0.1', DATABASE_URL: databasePath, LOG_LEVEL: 'warn' }, '/.well-known/jwks.json');
  console.error(`soak: ${String(settings.warmUpSeconds)} s warm-up, then ${String(settings.durationSeconds - settings.warmUpSeconds)} s measured, against ${server.baseUrl}`);
  let run: LoadRun;
  try {
    run = await runLoad(server, databasePath, settings);
  } finally {
    if (server.child.exitCode === null && server.child.signalCode === null) await server.stop();
  }
  const results = soakResults(settings, run, await countRows(databasePath), loadAverageBefore);
  printReport(results);
  if (settings.quick) console.log('\nQuick run: bench/soak-results.json left as it was.');
  else {
    writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`\nWritten to ${RESULTS_FILE}`);
  }
  if (results.failures.length > 0) {
    console.error(`\nSoak failed: ${results.failures.join('; ')}`);
    process.exitCode = 1;
  } else console.log('\nSoak passed: no failed request, RSS growth under the goal.');
} finally {
  rmSync(directory, { recursive: true, force: true });
}
