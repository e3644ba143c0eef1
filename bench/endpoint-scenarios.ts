/**
 * The scenarios of one database: its start-up, the key endpoints beside bare Fastify, `POST /auth`
 * beside bare Fastify signing the same token (RS256, ES256) or beside the machine's signing limit
 * (the other algorithms), and `POST /oauth/token` beside `POST /auth`; and the goals they are judged on.
 */
import { createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Kysely, SqliteDialect } from 'kysely';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../src/keys/algorithms.js';
import { openDatabase } from '../src/database/connection.js';
import type { Database } from '../src/database/schema.js';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { keyState } from '../src/keys/key-lifecycle.js';
import { createKeyStore } from '../src/keys/key-store.js';
import type { TokenTemplate } from './bare-server.js';
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

interface ActiveKey {
  kid: string;
  privateKeyPem: string;
}

/** The active private key of each algorithm, read the way the server reads it. */
async function activeKeys(databasePath: string): Promise<Map<SigningAlgorithm, ActiveKey>> {
  const db = await openDatabase(databasePath, { mustExist: true });
  try {
    const now = Math.floor(Date.now() / 1000);
    const served = await createKeyStore(db).loadServingKeys(now, []);
    const active = served.filter((key) => keyState(key, now) === 'active');
    return new Map(active.map((key) => [key.alg, { kid: String(key.kid), privateKeyPem: key.privateKeyPem }]));
  } finally {
    await db.destroy();
  }
}

function activeKeyOf(keys: ReadonlyMap<SigningAlgorithm, ActiveKey>, algorithm: SigningAlgorithm): ActiveKey {
  const key = keys.get(algorithm);
  if (key === undefined) throw new Error(`no active ${algorithm} key`);
  return key;
}

/**
 * The token our `POST /auth?alg=` issues for a request without a body, read from one it issued
 * (so that the baseline signs what we sign, whatever the issuer, subject or lifetime), with the key
 * that signed it.
 */
async function tokenTemplate(server: RunningProcess, algorithm: SigningAlgorithm, key: ActiveKey): Promise<TokenTemplate> {
  const { token } = (await (await fetch(`${server.baseUrl}/auth?alg=${algorithm}`, { method: 'POST' })).json()) as { token: string };
  const { alg, ...header } = decodeProtectedHeader(token);
  if (alg !== algorithm || header.kid !== key.kid) throw new Error(`POST /auth?alg=${algorithm} signed with ${String(alg)} key ${String(header.kid)}, not the active key ${key.kid}`);
  const { iat = 0, exp = 0, ...claims } = decodeJwt(token);
  // jose imports PKCS#8 only; the store keeps RSA keys as PKCS#1.
  const privateKeyPkcs8 = createPrivateKey(key.privateKeyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { header: { ...header, alg }, claims, lifetimeSeconds: exp - iat, privateKeyPkcs8 };
}

/** Rows of `auth_logs`, read while the server writes: opening the database as the server does would take its write lock to check the migrations. */
async function countAuthLogs(databasePath: string): Promise<number> {
  const SQLite = await loadSqliteDriver();
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(databasePath, { readonly: true, fileMustExist: true }) }) });
  try {
    const { rows } = await db.selectFrom('auth_logs').select((eb) => eb.fn.countAll<number>().as('rows')).executeTakeFirstOrThrow();
    return rows;
  } finally {
    await db.destroy();
  }
}

/** What a scenario must reach for a full run to pass, besides no failed request. */
export interface ScenarioGoal {
  /** The least ratio to its baseline. */
  leastRatio: number;
  /** The p99 latency must stay under this many ms. */
  p99UnderMs?: number;
}

/** Over a `POST /auth` scenario: the tokens answered 200, warm-ups included, and the `auth_logs` rows the server wrote meanwhile. */
export interface AuthLogCount {
  tokensIssued: number;
  rowsAdded: number;
}

export type MeasuredScenario = Scenario & { goal?: ScenarioGoal; authLogs?: AuthLogCount };

// Bare Fastify sends the same bytes with no work of ours per request; our headers, hooks and log
// line should cost at most a tenth of its requests per second.
const KEY_ENDPOINT_GOAL: ScenarioGoal = { leastRatio: 0.9 };
// The baseline signs the same token through jose with the same key; the route's checks, headers
// and log line and the token's auth_logs row should cost at most 15 % of its tokens per second.
const AUTH_GOAL: ScenarioGoal = { leastRatio: 0.85, p99UnderMs: 50 };
// Client secrets are checked with one SHA-256, not a password hash, so a client_credentials token
// should cost what a token of `POST /auth` costs.
const TOKEN_ENDPOINT_GOAL: ScenarioGoal = { leastRatio: 0.9 };
/** The algorithms whose `POST /auth` takes turns with bare Fastify signing the same token; the others are set beside the signing limit. */
const BARE_SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['RS256', 'ES256'];
// Scenarios that issue tokens take three rounds, quick runs too: even a quick run's ratio is then
// a median, not one round that a slow moment of the shared machine decides alone.
const TOKEN_ROUNDS = 3;

const tokenTurn = { seconds: SIDE_BY_SIDE_SECONDS, warmUpSeconds: 1, method: 'POST' } as const;

/** `POST /oauth/token` with the client's Basic credentials, taking turns with `POST /auth`; both sign with the default algorithm. */
export async function measureTokenEndpoint(server: RunningProcess, { clientId, secret }: BenchClient): Promise<MeasuredScenario> {
  const tokenRequest = {
    ...tokenTurn,
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  };
  const scenario = await sideBySide(
    'POST /oauth/token, client_credentials',
    () => load(server, '/oauth/token', tokenRequest),
    `POST /auth, ${SIGNING_ALGORITHMS[0]}`,
    () => load(server, '/auth', tokenTurn),
    TOKEN_ROUNDS,
  );
  return { ...scenario, goal: TOKEN_ENDPOINT_GOAL };
}

/**
 * `POST /auth?alg=` taking turns with the bare signing route of `bare`, and the `auth_logs` rows
 * the server wrote meanwhile: the scenario's own requests are the only ones it gets.
 */
async function measureAuthBesideBareSigning(server: RunningProcess, bare: RunningProcess, databasePath: string, algorithm: SigningAlgorithm): Promise<MeasuredScenario> {
  const path = `/auth?alg=${algorithm}`;
  const rowsBefore = await countAuthLogs(databasePath);
  let tokensIssued = 0;
  const ours = async () => {
    const result = await load(server, path, tokenTurn);
    tokensIssued += result.succeeded;
    return result;
  };
  const scenario = await sideBySide(`POST ${path}`, ours, 'bare Fastify, jose signing the same token', () => load(bare, path, tokenTurn), TOKEN_ROUNDS);
  const rowsAdded = (await countAuthLogs(databasePath)) - rowsBefore;
  return { ...scenario, goal: AUTH_GOAL, authLogs: { tokensIssued, rowsAdded } };
}

export interface GoalCheck {
  met: boolean;
  /** The figure against the goal, in a line of the report. */
  line: string;
}

function goalCheck(subject: string, measured: string, goal: string, met: boolean): GoalCheck {
  return { met, line: `${subject}: ${measured}; goal ${goal}: ${met ? 'met' : 'MISSED'}` };
}

function scenarioGoals(label: string, { name, goal, authLogs, ratio, baselineName, ours }: MeasuredScenario): GoalCheck[] {
  const subject = `${name} (${label} database)`;
  const checks: GoalCheck[] = [];
  if (goal !== undefined) {
    const errors = ours.errors === 0 ? '' : `, ${String(ours.errors)} failed requests`;
    checks.push(goalCheck(subject, `${String(ratio)} of ${baselineName}${errors}`, `at least ${String(goal.leastRatio)}, no failed request`, ratio >= goal.leastRatio && ours.errors === 0));
    if (goal.p99UnderMs !== undefined) checks.push(goalCheck(subject, `p99 ${String(ours.p99Ms)} ms`, `under ${String(goal.p99UnderMs)} ms`, ours.p99Ms < goal.p99UnderMs));
  }
  if (authLogs !== undefined) {
    // A request in flight when autocannon ends a run gets its token and row, but is not counted: the rows may exceed the tokens by that much.
    const { tokensIssued, rowsAdded } = authLogs;
    checks.push(goalCheck(subject, `${String(rowsAdded)} auth_logs rows for ${String(tokensIssued)} tokens answered 200, warm-ups included`, 'a row for every token', rowsAdded >= tokensIssued));
  }
  return checks;
}

/** Every goal of one database's scenarios, against what was measured. */
export function databaseGoals(label: string, { scenarios }: DatabaseMeasurement): GoalCheck[] {
  return scenarios.flatMap((scenario) => scenarioGoals(label, scenario));
}

export interface DatabaseMeasurement {
  scenarios: MeasuredScenario[];
  /** The median of three starts on the existing database, to the first JWKS. */
  startupMs: number;
}

interface BareFastify {
  process: RunningProcess;
  /** The per-kid document it serves, of the first key in our JWKS. */
  kidPath: string;
  /** Our JWKS's ETag, for the 304 scenario. */
  etag: string;
}

/** Bare Fastify beside `server`: the bytes of its key documents, and the RS256 and ES256 tokens of its `POST /auth` signed afresh. */
async function startBareFastify(server: RunningProcess, keys: ReadonlyMap<SigningAlgorithm, ActiveKey>, directory: string): Promise<BareFastify> {
  const jwksResponse = await fetch(`${server.baseUrl}/.well-known/jwks.json`);
  const jwksBody = await jwksResponse.text();
  const kid = (JSON.parse(jwksBody) as { keys: { kid: string }[] }).keys[0]?.kid ?? '1';
  const kidPath = `/.well-known/${kid}.json`;
  writeFileSync(join(directory, 'jwks.json'), jwksBody);
  writeFileSync(join(directory, 'kid.json'), await (await fetch(`${server.baseUrl}${kidPath}`)).text());
  const templates = await Promise.all(BARE_SIGNING_ALGORITHMS.map(async (algorithm) => [algorithm, await tokenTemplate(server, algorithm, activeKeyOf(keys, algorithm))] as const));
  // Private keys: readable by this user only, and gone with the directory at the end of the run.
  writeFileSync(join(directory, 'tokens.json'), JSON.stringify(Object.fromEntries(templates)), { mode: 0o600 });
  const routes = { '/.well-known/jwks.json': join(directory, 'jwks.json'), [kidPath]: join(directory, 'kid.json') };
  const bare = await startProcess(BARE_SERVER_ENTRY, { ROUTES: JSON.stringify(routes), TOKENS: join(directory, 'tokens.json') }, kidPath);
  return { process: bare, kidPath, etag: jwksResponse.headers.get('etag') ?? '' };
}

export async function measureDatabase(label: string, databasePath: string, directory: string, client: BenchClient): Promise<DatabaseMeasurement> {
  const startups: number[] = [];
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const server = await startServer(databasePath);
    startups.push(Math.round(server.startupMs));
    await server.stop();
  }
  const server = await startServer(databasePath);
  const keys = await activeKeys(databasePath);
  const { process: bare, kidPath, etag } = await startBareFastify(server, keys, directory);

  const scenarios: MeasuredScenario[] = [];
  console.error(`[${label}] key endpoints`);
  const turn = { seconds: SIDE_BY_SIDE_SECONDS, warmUpSeconds: 1 };
  const bareFastify = 'bare Fastify, same bytes';
  scenarios.push({ ...(await sideBySide('GET /.well-known/jwks.json', () => load(server, '/.well-known/jwks.json', turn), bareFastify, () => load(bare, '/.well-known/jwks.json', turn))), goal: KEY_ENDPOINT_GOAL });
  scenarios.push({ ...(await sideBySide(`GET ${kidPath}`, () => load(server, kidPath, turn), bareFastify, () => load(bare, kidPath, turn))), goal: KEY_ENDPOINT_GOAL });
  const notModified = { ...turn, headers: { 'if-none-match': etag }, expectedStatus: 304 };
  scenarios.push(await sideBySide('GET /.well-known/jwks.json, 304', () => load(server, '/.well-known/jwks.json', notModified), 'the same route, 200', () => load(server, '/.well-known/jwks.json', turn)));

  for (const algorithm of SIGNING_ALGORITHMS) {
    console.error(`[${label}] POST /auth?alg=${algorithm}`);
    if (BARE_SIGNING_ALGORITHMS.includes(algorithm)) {
      scenarios.push(await measureAuthBesideBareSigning(server, bare, databasePath, algorithm));
      continue;
    }
    const limit = await signingLimit(algorithm, activeKeyOf(keys, algorithm).privateKeyPem);
    scenarios.push(withBaseline(`POST /auth?alg=${algorithm}`, await load(server, `/auth?alg=${algorithm}`, { method: 'POST' }), `crypto.sign loop × ${String(CORES)} cores`, limit));
  }
  await bare.stop();
  console.error(`[${label}] POST /oauth/token beside POST /auth`);
  scenarios.push(await measureTokenEndpoint(server, client));
  await server.stop();
  startups.sort((a, b) => a - b);
  return { scenarios, startupMs: startups[1] ?? 0 };
}
