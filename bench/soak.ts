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
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess } from './server-process.js';
import { runLoad, type LoadRun } from './soak-load.js';
import { countRows, printReport, soakResults } from './soak-report.js';
import { readSettings, USAGE, type Settings } from './soak-settings.js';

const SERVER_ENTRY = fileURLToPath(new URL('../server/server.js', import.meta.url));
const RESULTS_FILE = fileURLToPath(new URL('../../bench/soak-results.json', import.meta.url));

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
