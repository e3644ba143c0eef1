/** The scenarios of one database: its start-up, the key endpoints beside bare Fastify, and `POST /auth` beside the machine's signing limit. */
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
import { startProcess } from './server-process.js';

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

export interface DatabaseMeasurement {
  scenarios: Scenario[];
  /** The median of three starts on the existing database, to the first JWKS. */
  startupMs: number;
}

export async function measureDatabase(label: string, databasePath: string, directory: string): Promise<DatabaseMeasurement> {
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
