/** The scale-out scenarios: WORKERS=2 and PostgreSQL, each taking turns with one server process on SQLite. */
import { join } from 'node:path';
import pg from 'pg';
import { load, sideBySide, startServer, type Scenario } from './load.js';
import { QUICK, SIDE_BY_SIDE_SECONDS } from './run-settings.js';

/**
 * Scale-out on this machine: `POST /auth` (RS256, which also writes an auth log row per token)
 * and the JWKS with WORKERS=2, and on PostgreSQL (BENCH_POSTGRES_URL, a URL on which a database
 * may be created) with one and two workers, each taking turns with one process on SQLite.
 */
export async function measureScaleOut(directory: string): Promise<Scenario[]> {
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
