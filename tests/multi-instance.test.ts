import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { describe, expect, it } from 'vitest';
import { keyState, signingLine } from '../src/keys/key-lifecycle.js';
import { newTestDatabase, readDatabase, serverEnvironment, storedKeys, temporaryDirectory } from './helpers.js';
import { CLI_ENTRY, metricsUrl, postAuth, postAuthOnNewConnection, runServerToExit, startServer, type RunningServer } from './server-process.js';

const ISSUER = 'https://id.example.com';

async function jwksOf(server: RunningServer): Promise<{ jwks: JSONWebKeySet; etag: string | null }> {
  const response = await fetch(`${server.url}/.well-known/jwks.json`);
  return { jwks: (await response.json()) as JSONWebKeySet, etag: response.headers.get('etag') };
}

async function eventually(what: string, condition: () => Promise<boolean>, seconds = 6): Promise<void> {
  for (let attempt = 0; attempt < seconds * 10; attempt += 1) {
    if (await condition()) return;
    await sleep(100);
  }
  throw new Error(`not within ${String(seconds)} s: ${what}`);
}

function register(server: RunningServer, username: string): Promise<number> {
  return fetch(`${server.url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, email: `${username}@test.com` }),
  }).then((response) => response.status);
}

/** Every token one instance issues verifies against the JWKS every instance serves. */
async function expectCrossVerification(instances: readonly RunningServer[], algorithms: readonly string[]): Promise<void> {
  const keySets = await Promise.all(instances.map(async (server) => createLocalJWKSet((await jwksOf(server)).jwks)));
  for (const issuing of instances) {
    for (const alg of algorithms) {
      const token = await postAuth(issuing.url, `?alg=${alg}`);
      for (const keySet of keySets) await expect(jwtVerify(token, keySet, { issuer: ISSUER })).resolves.toBeDefined();
    }
  }
}

describe('three instances on one database', () => {
  it('make each key once, serve one JWKS, accept each other’s tokens, register a username once, and follow a forced rotation within seconds', async () => {
    const databaseUrl = await newTestDatabase();
    const variables = { DATABASE_URL: databaseUrl, ISSUER, ALGORITHMS: 'RS256,ES256', RATE_LIMIT_MAX: '0' };
    const instances = await Promise.all([1, 2, 3].map(() => startServer(variables)));

    // One line per algorithm (active, successor, expired), made once between them.
    expect(await storedKeys(databaseUrl)).toHaveLength(6);
    const documents = await Promise.all(instances.map(jwksOf));
    expect(new Set(documents.map(({ etag }) => etag)).size).toBe(1);
    expect(documents[0]?.jwks.keys).toHaveLength(4);
    await expectCrossVerification(instances, ['RS256', 'ES256']);

    // The same username on two instances at once: one user and one 409, every time.
    const [first, second, third] = instances as [RunningServer, RunningServer, RunningServer];
    for (let race = 0; race < 5; race += 1) {
      const statuses = await Promise.all([register(first, `racer_${String(race)}`), register(second, `RACER_${String(race)}`)]);
      expect(statuses.sort()).toEqual([201, 409]);
    }
    expect(await readDatabase(databaseUrl, (db) => db.selectFrom('users').select('username').execute())).toHaveLength(5);

    // A forced rotation, made once from outside, reaches every instance within seconds.
    const rotation = spawnSync(process.execPath, [CLI_ENTRY, 'keys', 'rotate', '--now', '--alg', 'RS256'], { env: serverEnvironment(variables), encoding: 'utf8' });
    expect(rotation.status).toBe(0);
    const rotatedKid = /published key (\d+)/.exec(rotation.stdout)?.[1];
    expect(rotatedKid).toBeDefined();
    for (const server of instances) {
      await eventually(`instance ${server.url} signs with key ${String(rotatedKid)}`, async () => decodeProtectedHeader(await postAuth(server.url)).kid === rotatedKid);
    }
    const afterRotation = await Promise.all(instances.map(jwksOf));
    expect(new Set(afterRotation.map(({ etag }) => etag)).size).toBe(1);
    expect(afterRotation[0]?.jwks.keys.map((jwk) => jwk.kid)).toContain(rotatedKid);
    expect((await storedKeys(databaseUrl)).filter((key) => key.alg === 'RS256')).toHaveLength(4);
    await expectCrossVerification(instances, ['RS256', 'ES256']);

    expect(await Promise.all([first.stop(), second.stop(), third.stop()])).toEqual([0, 0, 0]);
  });

  it('rotate on schedule once between them, not once each', async () => {
    const databaseUrl = await newTestDatabase();
    // A key signs for 2 s: each instance's scheduler finds a successor due every other second.
    const variables = { DATABASE_URL: databaseUrl, ISSUER, KEY_TTL: '2', TOKEN_TTL: '1', RATE_LIMIT_MAX: '0' };
    const instances = await Promise.all([1, 2, 3].map(() => startServer(variables)));
    const started = Math.floor(Date.now() / 1000);
    await sleep(7000);
    const now = Math.floor(Date.now() / 1000);
    await Promise.all(instances.map((server) => server.stop()));

    const keys = (await storedKeys(databaseUrl)).filter((key) => key.revokedAt === null);
    const signing = keys.filter((key) => key.activatesAt < key.retiresAt && key.retiresAt > started - 1).sort((a, b) => a.activatesAt - b.activatesAt);
    // Each moment has exactly one signing key: no gap, no overlap, no key made twice.
    for (let index = 1; index < signing.length; index += 1) {
      expect(signing[index]?.activatesAt, `key ${String(signing[index]?.kid)}`).toBe(signing[index - 1]?.retiresAt);
    }
    expect(signing.length).toBeGreaterThanOrEqual(4);
    // One successor per handover, published as its predecessor started signing: a key made twice
    // would share its publication second with its twin, and add to the count.
    const successors = keys.filter((key) => key.publishedAt > started);
    expect(new Set(successors.map((key) => key.publishedAt)).size).toBe(successors.length);
    expect(keys.length).toBeLessThanOrEqual(3 + Math.ceil((now - started) / 2) + 1);
    const line = signingLine(keys, now);
    expect(line.waiting.length).toBeLessThanOrEqual(1);
    expect(keys.filter((key) => keyState(key, now) === 'expired')).not.toHaveLength(0);
  });
});

describe('WORKERS', () => {
  it('stops every worker, and exits 1, when the first workers cannot start', async () => {
    const missing = join(temporaryDirectory(), 'missing', 'keys.db');
    const { code, stdout, stderr } = await runServerToExit({ PORT: '0', WORKERS: '2', DATABASE_URL: missing });
    const output = stdout + stderr;
    expect(code).toBe(1);
    expect(output).toContain(`Cannot start: DATABASE_URL "${missing}" cannot be used`);
    expect(output).toContain('a worker failed to start; stopping');
    expect(output).not.toContain('Server listening');
  });

  it('runs that many server processes on one port, replaces one that dies, and stops them all on SIGTERM', async () => {
    const databaseUrl = await newTestDatabase();
    const server = await startServer({ DATABASE_URL: databaseUrl, WORKERS: '2', RATE_LIMIT_MAX: '0', METRICS_PORT: '0' });
    const listeningWorkers = () => server.logLines.filter((line) => line.includes('Server listening')).length;
    await eventually('both workers listen', () => Promise.resolve(listeningWorkers() === 2));
    const workerPids = () => new Set(server.logLines.filter((line) => line.includes('"request completed"')).map((line) => (JSON.parse(line) as { pid: number }).pid));

    const tokens = await Promise.all(Array.from({ length: 40 }, () => postAuthOnNewConnection(server.url)));
    const keySet = createLocalJWKSet((await jwksOf(server)).jwks);
    for (const token of tokens) await expect(jwtVerify(token, keySet)).resolves.toBeDefined();
    const pids = workerPids();
    expect(pids.size).toBe(2);
    expect(pids.has(server.child.pid ?? 0)).toBe(false);
    // The primary serves both workers' metrics, summed, on METRICS_PORT; the service port has none.
    const metrics = await (await fetch(metricsUrl(server.logLines))).text();
    expect(metrics).toMatch(/^jwks_tokens_issued_total\{alg="RS256",expired="false"\} 40$/m);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);

    const [victim] = pids;
    process.kill(victim ?? 0, 'SIGKILL');
    await eventually('a replacement worker listens', () => Promise.resolve(listeningWorkers() === 3));
    await Promise.all(Array.from({ length: 20 }, () => postAuthOnNewConnection(server.url)));

    expect(await server.stop()).toBe(0);
    for (const pid of workerPids()) expect(() => process.kill(pid, 0)).toThrow();
  });
});
