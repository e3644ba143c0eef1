/** The benchmark's results as results.json holds them, and the tables and lines it prints of them. */
import { cpus, totalmem } from 'node:os';
import { databaseGoals, type DatabaseMeasurement } from './endpoint-scenarios.js';
import type { KeyGenerationStall, Pruning } from './key-maintenance-costs.js';
import type { LaunchResults } from './launch.js';
import type { Scenario } from './load.js';
import { CONNECTIONS, CORES, EXPIRED_KEYS, QUICK, RUN_SECONDS, USERS, WARM_UP_SECONDS } from './run-settings.js';
import type { SigningStrategyResult } from './signing-strategies.js';

interface Measurements {
  small: DatabaseMeasurement;
  /** Left out of a quick run, as is `prune`. */
  large: DatabaseMeasurement | undefined;
  scaleOut: Scenario[];
  eventLoop: KeyGenerationStall;
  launch: LaunchResults;
  prune: Pruning | undefined;
  signingStrategies: SigningStrategyResult[];
}

export function benchResults({ small, large, scaleOut, eventLoop, launch, prune, signingStrategies }: Measurements) {
  return {
    date: new Date().toISOString(),
    machine: { cpus: CORES, model: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    settings: { runSeconds: RUN_SECONDS, warmUpSeconds: WARM_UP_SECONDS, connections: CONNECTIONS, quick: QUICK },
    small,
    large,
    largeVersusSmall: large?.scenarios.map((scenario, index) => ({
      scenario: scenario.name,
      ratio: Number((scenario.ours.requestsPerSecond / (small.scenarios[index]?.ours.requestsPerSecond ?? 1)).toFixed(2)),
    })),
    // The goals the run fails on, besides failed requests.
    goals: [...databaseGoals('small', small), ...(large === undefined ? [] : databaseGoals('large', large))],
    scaleOut,
    eventLoop,
    launch,
    prune,
    signingStrategies,
  };
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

export function printReport({ small, large, goals, scaleOut, launch, signingStrategies, prune, eventLoop }: ReturnType<typeof benchResults>): void {
  printTable('Small database (a few keys per algorithm)', small.scenarios);
  if (large !== undefined) printTable(`Large database (${String(EXPIRED_KEYS)} expired keys, ${String(USERS)} users)`, large.scenarios);
  console.log('');
  for (const goal of goals) console.log(goal.line);
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
}
