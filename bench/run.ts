/**
 * `npm run bench`: drives the built server on a loopback port with autocannon and sets every
 * figure beside its baseline, measured in the same run: the key endpoints against a bare Fastify
 * route sending the same bytes; `POST /auth` on RS256 and ES256 against a bare Fastify route signing
 * the same token with the same key through jose, on the other algorithms against the machine's
 * signing limit; `POST /oauth/token` against `POST /auth`. Then the same with 100,000 expired keys and 1,000 users in the database, the time from launch to first answer
 * (npm start and node, new and existing database), the longest event-loop stall while keys are generated; then WORKERS and PostgreSQL (BENCH_POSTGRES_URL)
 * against one process on SQLite. Prints a table and writes bench/results.json.
 * `--quick` shortens every run and leaves out the large database (a smoke test, not figures to
 * report) and leaves results.json alone.
 * Any failed request (an error, a time-out, an unexpected status) fails the run. So does, in a full
 * run, a missed goal: the key endpoints under 0.9 of bare Fastify; `POST /auth` on RS256 or ES256
 * under 0.85 of its baseline, with a p99 of 50 ms or more, or with fewer `auth_logs` rows written
 * than tokens answered; `POST /oauth/token` under 0.9 of `POST /auth`. A quick run prints a missed goal only.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureDatabase } from './endpoint-scenarios.js';
import { keyGenerationStall, pruning } from './key-maintenance-costs.js';
import { measureLaunch } from './launch.js';
import { startServer } from './load.js';
import { benchResults, printReport } from './run-report.js';
import { EXPIRED_KEYS, QUICK, USERS } from './run-settings.js';
import { measureScaleOut } from './scale-out.js';
import { registerBenchClient, seedLargeDatabase } from './seed-database.js';
import { measureSigningStrategies } from './signing-strategies.js';

const RESULTS_FILE = fileURLToPath(new URL('../../bench/results.json', import.meta.url));

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
  // Before the copy, so the large database has the client too.
  const client = await registerBenchClient(smallDatabase);
  // A quick run leaves the large database out: seeding and measuring it is most of its time.
  if (!QUICK) {
    copyFileSync(smallDatabase, largeDatabase);
    await seedLargeDatabase(largeDatabase);
  }

  console.error('signing strategies');
  const signingStrategies = await measureSigningStrategies(QUICK ? 1 : 5);
  const prune = QUICK ? undefined : await pruning(largeDatabase, directory);
  const small = await measureDatabase('small', smallDatabase, directory, client);
  const large = QUICK ? undefined : await measureDatabase(`${String(EXPIRED_KEYS)} expired keys, ${String(USERS)} users`, largeDatabase, directory, client);
  const scaleOut = await measureScaleOut(directory);
  const results = benchResults({ small, large, scaleOut, eventLoop, launch, prune, signingStrategies });
  printReport(results);
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
  const missed = results.goals.filter((goal) => !goal.met);
  if (missed.length > 0) {
    console.error(`Goal missed: ${missed.map((goal) => goal.line).join('; ')}`);
    // A quick run's short rounds swing by more than a goal's margin on a busy machine (CI's
    // among them): only a full run's figures decide.
    if (QUICK) console.error('Quick run: goals are not judged on so short a measurement; run the full bench to check them.');
    else process.exitCode = 1;
  }
} finally {
  rmSync(directory, { recursive: true, force: true });
}
