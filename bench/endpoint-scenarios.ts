/**
 * The scenarios of one database: its start-up, the key endpoints beside bare Fastify, `POST /auth`
 * beside the machine's signing limit, and `POST /oauth/token` beside `POST /auth`.
 */
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../src/keys/algorithms.js';
import { openDatabase } from '../src/database/connection.js';
import { keyState } from '../src/keys/key-lifecycle.js';
import { createKeyStore } from '../src/keys/key-store.js';
import { load, sideBySide, startServer, withBaseline, type Scenario } from './load.js';
import { CORES, QUICK, SIDE_BY_SIDE_SECONDS } from './run-settings.js';
import type { BenchClient } from './seed-database.js';
import { startProcess, type RunningProcess } from './server-process.js';

const BARE_SERVER_ENTRY = fileURLToPath(new URL('./bare-server.js', import.meta.url));
const SIGN_WORKER = new URL('./sign-worker.js', import.meta.url);

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

/**
 * Client secrets are checked with one SHA-256, not a password hash, so a client_credentials token
 * should cost what a token of `POST /auth` costs: at least this share of its tokens per second.
 */
export const TOKEN_ENDPOINT_GOAL = 0.9;
const TOKEN_ENDPOINT_SCENARIO = 'POST /oauth/token, client_credentials';
// The run fails on this ratio, quick runs too: three rounds, whose median a slow moment of the shared machine cannot decide alone.
const TOKEN_ENDPOINT_ROUNDS = 3;

/** `POST /oauth/token` with the client's Basic credentials, taking turns with `POST /auth`; both sign with the default algorithm. */
export function measureTokenEndpoint(server: RunningProcess, { clientId, secret }: BenchClient): Promise<Scenario> {
  const turn = { seconds: SIDE_BY_SIDE_SECONDS, warmUpSeconds: 1, method: 'POST' } as const;
  const tokenRequest = {
    ...turn,
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  };
  return sideBySide(TOKEN_ENDPOINT_SCENARIO, () => load(server, '/oauth/token', tokenRequest), `POST /auth, ${SIGNING_ALGORITHMS[0]}`, () => load(server, '/auth', turn), TOKEN_ENDPOINT_ROUNDS);
}

export interface GoalCheck {
  met: boolean;
  /** The figure against the goal, in a line of the report. */
  line: string;
}

/** The token endpoint's ratio to `POST /auth` on one database, against its goal. */
export function tokenEndpointGoal(label: string, { scenarios }: DatabaseMeasurement): GoalCheck {
  const scenario = scenarios.find(({ name }) => name === TOKEN_ENDPOINT_SCENARIO);
  if (scenario === undefined) return { met: false, line: `${TOKEN_ENDPOINT_SCENARIO} (${label} database): not measured` };
  const met = scenario.ratio >= TOKEN_ENDPOINT_GOAL && scenario.ours.errors === 0;
  const errors = scenario.ours.errors === 0 ? '' : `, ${String(scenario.ours.errors)} failed requests`;
  return { met, line: `${TOKEN_ENDPOINT_SCENARIO} (${label} database): ${String(scenario.ratio)} of ${scenario.baselineName}${errors}; goal at least ${String(TOKEN_ENDPOINT_GOAL)}, no failed request: ${met ? 'met' : 'MISSED'}` };
}

export interface DatabaseMeasurement {
  scenarios: Scenario[];
  /** The median of three starts on the existing database, to the first JWKS. */
  startupMs: number;
}

export async function measureDatabase(label: string, databasePath: string, directory: string, client: BenchClient): Promise<DatabaseMeasurement> {
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
  console.error(`[${label}] POST /oauth/token beside POST /auth`);
  scenarios.push(await measureTokenEndpoint(server, client));
  await server.stop();
  startups.sort((a, b) => a - b);
  return { scenarios, startupMs: startups[1] ?? 0 };
}
