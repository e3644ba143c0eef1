/** The soak's results as soak-results.json holds them, what fails the soak, and the table and lines it prints. */
import { availableParallelism, cpus, loadavg } from 'node:os';
import type { RecordableHistogram } from 'node:perf_hooks';
import { openDatabase } from '../src/database/connection.js';
import type { EndpointStats, PhaseStats } from './soak-checks.js';
import type { LoadRun } from './soak-load.js';
import { percentGrowth, rssFloorMb, RSS_FLOOR_SECONDS, RSS_GROWTH_LIMIT_PERCENT } from './soak-memory.js';
import type { Settings } from './soak-settings.js';
import { ENDPOINTS, GREEDY_PER_SECOND, MIX, type Endpoint } from './soak-traffic.js';

export async function countRows(databasePath: string): Promise<{ users: number; authLogs: number }> {
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

export function printReport(results: ReturnType<typeof soakResults>): void {
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
export function soakResults(settings: Settings, run: LoadRun, rows: { users: number; authLogs: number }, loadAverageBefore: number) {
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
