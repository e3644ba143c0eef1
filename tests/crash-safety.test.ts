/**
 * Crash safety on SQLite: a server killed with SIGKILL while it issues tokens, registers users
 * and rotates keys leaves a file that is intact, keeps every key it published and every user it
 * confirmed, and serves on after a restart with the tokens it issued before still verifying.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { describe, expect, onTestFailed, onTestFinished, test } from 'vitest';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { basic, readDatabase, serverEnvironment, temporaryDirectory } from './helpers.js';
import { CLI_ENTRY, startServer, type RunningServer } from './server-process.js';

const SQLite = await loadSqliteDriver();

const KILLS = 20;
const ISSUER = 'https://id.example.com';
const TEN_YEARS_SECONDS = 10 * 365 * 24 * 3600;
const KILL_WINDOW_MS = { earliest: 150, latest: 1200 };
const PARALLEL_TOKEN_REQUESTS = 4;
const PARALLEL_REGISTRATIONS = 2;
// Scheduled rotations change the JWKS at most once a second: polling faster would only take the
// two cores away from the writers whose crash this test is about.
const JWKS_POLL_INTERVAL_MS = 50;
// A registered user's token goes through the one transaction that writes two tables
// (auth_logs and users.last_login); every fifth token request exercises it.
const REGISTERED_USER_EVERY = 5;
const EXPIRED_TOKEN_EVERY = 7;
// CRASH_SAFETY_SEED replays the kill moments of a failed run.
const SEED = process.env.CRASH_SAFETY_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.CRASH_SAFETY_SEED);

/** mulberry32: a small seeded generator, so that the kill moments of a run can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), state | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface IssuedToken {
  token: string;
  kid: string;
  exp: number;
  iteration: number;
}

interface Registration {
  username: string;
  email: string;
  password: string;
  iteration: number;
  passwordChecked: boolean;
}

/** What the servers answered before they were killed: the promises a crash must not break. */
interface Ledger {
  tokens: IssuedToken[];
  /** Every kid a JWKS published, a token was signed with, or the CLI reported, and where it was first seen. */
  kidsSeen: Map<string, string>;
  registrations: Registration[];
  /** Answers a healthy server never gives, and failures before the kill. */
  unexpected: string[];
  /** Requests that were in flight when the server was killed. */
  cutOff: number;
  verifiedTokens: Set<string>;
  cliRotations: number;
  nextUserNumber: number;
  nextTokenRequest: number;
}

function newLedger(): Ledger {
  return { tokens: [], kidsSeen: new Map(), registrations: [], unexpected: [], cutOff: 0, verifiedTokens: new Set(), cliRotations: 0, nextUserNumber: 0, nextTokenRequest: 0 };
}

function noteKid(ledger: Ledger, kid: string, source: string): void {
  if (!ledger.kidsSeen.has(kid)) ledger.kidsSeen.set(kid, source);
}

/** An answer the server gave with a status it should not have: a finding even if the kill follows. */
class UnexpectedAnswer extends Error {
  override readonly name = 'UnexpectedAnswer';
}

async function answerOf(response: Response, expectedStatus: number, what: string): Promise<string> {
  const body = await response.text();
  if (response.status !== expectedStatus) throw new UnexpectedAnswer(`${what} answered ${String(response.status)}: ${body}`);
  return body;
}

function recordToken(ledger: Ledger, token: string, iteration: number): void {
  const kid = decodeProtectedHeader(token).kid ?? '';
  ledger.tokens.push({ token, kid, exp: decodeJwt(token).exp ?? 0, iteration });
  noteKid(ledger, kid, `token of iteration ${String(iteration)}`);
}

async function fetchJwks(url: string): Promise<JSONWebKeySet> {
  return JSON.parse(await answerOf(await fetch(`${url}/.well-known/jwks.json`), 200, 'GET /.well-known/jwks.json')) as JSONWebKeySet;
}

function recordJwks(ledger: Ledger, jwks: JSONWebKeySet, source: string): void {
  for (const { kid } of jwks.keys) noteKid(ledger, kid ?? '', source);
}

/** Asked, not read: whether the load's server has been killed changes while its requests wait. */
interface Load {
  killed(): boolean;
}

/** Repeats `request` until the server is killed; a request cut off by the kill is expected, any other failure is not. */
async function untilKilled(load: Load, ledger: Ledger, request: () => Promise<void>): Promise<void> {
  while (!load.killed()) {
    try {
      await request();
    } catch (error) {
      if (load.killed() && !(error instanceof UnexpectedAnswer)) {
        ledger.cutOff += 1;
        return;
      }
      ledger.unexpected.push(String(error));
      return;
    }
  }
}

async function issueToken(url: string, ledger: Ledger, iteration: number): Promise<void> {
  const number = (ledger.nextTokenRequest += 1);
  const users = ledger.registrations.filter((registration) => registration.passwordChecked);
  const user = number % REGISTERED_USER_EVERY === 0 ? users[number % Math.max(users.length, 1)] : undefined;
  const query = user === undefined && number % EXPIRED_TOKEN_EVERY === 0 ? '?expired=true' : '';
  const headers: Record<string, string> = user === undefined ? {} : { authorization: basic(user.username, user.password) };
  const body = await answerOf(await fetch(`${url}/auth${query}`, { method: 'POST', headers }), 200, `POST /auth${query}`);
  recordToken(ledger, (JSON.parse(body) as { token: string }).token, iteration);
}

async function registerUser(url: string, ledger: Ledger, iteration: number): Promise<void> {
  const username = `crash_${String((ledger.nextUserNumber += 1))}`;
  const email = `${username}@test.com`;
  const response = await fetch(`${url}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, email }) });
  const { password } = JSON.parse(await answerOf(response, 201, `POST /register ${username}`)) as { password: string };
  ledger.registrations.push({ username, email, password, iteration, passwordChecked: false });
}

async function pollJwks(url: string, ledger: Ledger, iteration: number): Promise<void> {
  recordJwks(ledger, await fetchJwks(url), `JWKS during iteration ${String(iteration)}`);
  await sleep(JWKS_POLL_INTERVAL_MS);
}

interface CliRotation {
  child: ChildProcess;
  exited: Promise<void>;
}

/**
 * `keys rotate` in a process of its own; the kids it reports were committed before it printed
 * them. A run the test kills is one more crash; any other run must succeed. Every other
 * iteration rotates `--now`, which retires the signing key under the running server.
 */
function startCliRotation(variables: Record<string, string>, ledger: Ledger, iteration: number): CliRotation {
  const child = spawn(process.execPath, [CLI_ENTRY, 'keys', 'rotate', ...(iteration % 2 === 1 ? ['--now'] : [])], { env: serverEnvironment(variables), stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit').then((exit) => {
    const [code, signal] = exit as [number | null, NodeJS.Signals | null];
    for (const [, kid = ''] of output.matchAll(/published key (\d+)/g)) noteKid(ledger, kid, `CLI rotation of iteration ${String(iteration)}`);
    if (code === 0) ledger.cliRotations += 1;
    else if (signal !== 'SIGKILL') ledger.unexpected.push(`keys rotate exited with ${String(code)}: ${output}`);
  });
  return { child, exited };
}

function exitOf(child: ChildProcess): Promise<unknown> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
}

/** Loads `server` with tokens, registrations, JWKS fetches and a CLI rotation, and SIGKILLs it `killAfterMs` in. */
async function loadAndKill(server: RunningServer, variables: Record<string, string>, ledger: Ledger, iteration: number, killAfterMs: number): Promise<void> {
  let killed = false;
  const load: Load = { killed: () => killed };
  // Every other iteration the CLI's rotation dies with the server, mid-write if the moment falls
  // so; on the others it runs to the end, so that some rotations through the CLI land.
  const killCliWithServer = iteration % 2 === 0;
  const rotation = startCliRotation(variables, ledger, iteration);
  const clients = [
    ...Array.from({ length: PARALLEL_TOKEN_REQUESTS }, () => untilKilled(load, ledger, () => issueToken(server.url, ledger, iteration))),
    ...Array.from({ length: PARALLEL_REGISTRATIONS }, () => untilKilled(load, ledger, () => registerUser(server.url, ledger, iteration))),
    untilKilled(load, ledger, () => pollJwks(server.url, ledger, iteration)),
  ];
  await sleep(killAfterMs);
  killed = true;
  server.child.kill('SIGKILL');
  if (killCliWithServer) rotation.child.kill('SIGKILL');
  await Promise.all([exitOf(server.child), rotation.exited, ...clients]);
  // Killed by us, not dead of its own accord under the load.
  expect(server.child.signalCode, `server of iteration ${String(iteration)}`).toBe('SIGKILL');
}

/** The file as the crash left it, on a connection of its own: SQLite finds nothing wrong in it. */
function expectIntactFile(databasePath: string, iteration: number): void {
  const connection = new SQLite(databasePath);
  try {
    expect(connection.pragma('integrity_check', { simple: true }), `integrity after kill ${String(iteration)}`).toBe('ok');
    expect(connection.pragma('foreign_key_check'), `foreign keys after kill ${String(iteration)}`).toEqual([]);
  } finally {
    connection.close();
  }
}

const USERNAME = /^crash_\d+$/;
const SQLITE_TIMESTAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;
const ARGON2ID_HASH = /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;

/**
 * Every key seen is still stored, with its lifecycle; every user row is whole; every confirmed
 * registration is there once; every token answered was logged.
 */
async function expectNothingLost(databasePath: string, ledger: Ledger, iteration: number): Promise<void> {
  const { keyKids, lifecycleKids, users, authLogs } = await readDatabase(databasePath, async (db) => ({
    keyKids: (await db.selectFrom('keys').select('kid').orderBy('kid').execute()).map(({ kid }) => String(kid)),
    lifecycleKids: (await db.selectFrom('key_lifecycle').select('kid').orderBy('kid').execute()).map(({ kid }) => String(kid)),
    users: await db.selectFrom('users').select(['username', 'email', 'password_hash', 'date_registered', 'last_login']).execute(),
    authLogs: (await db.selectFrom('auth_logs').select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow()).count,
  }));
  const label = `after kill ${String(iteration)}`;
  const stored = new Set(keyKids);
  expect([...ledger.kidsSeen].filter(([kid]) => !stored.has(kid)).map(([kid, source]) => `kid ${kid}, first seen in ${source}`), label).toEqual([]);
  // A key row without its lifecycle would be adopted at the next start as a retired RS256 key.
  expect(lifecycleKids, label).toEqual(keyKids);

  const incomplete = users.filter(
    (user) => !USERNAME.test(user.username) || user.email !== `${user.username}@test.com` || !ARGON2ID_HASH.test(user.password_hash) || !SQLITE_TIMESTAMP.test(String(user.date_registered)),
  );
  expect(incomplete, label).toEqual([]);
  const rowsPerUsername = new Map<string, number>();
  for (const { username } of users) rowsPerUsername.set(username.toLowerCase(), (rowsPerUsername.get(username.toLowerCase()) ?? 0) + 1);
  expect([...rowsPerUsername].filter(([, rows]) => rows !== 1), label).toEqual([]);
  const notStoredOnce = ledger.registrations.filter(({ username }) => rowsPerUsername.get(username) !== 1).map(({ username, iteration: registeredIn }) => `${username} (201 in iteration ${String(registeredIn)})`);
  expect(notStoredOnce, label).toEqual([]);

  // A token is answered only once its authentication is logged (and, for a user, last_login set).
  expect(authLogs, label).toBeGreaterThanOrEqual(ledger.tokens.length);
  const loggedIn = new Set(users.filter((user) => user.last_login !== null).map((user) => user.username));
  expect(ledger.registrations.filter((registration) => registration.passwordChecked && !loggedIn.has(registration.username)).map(({ username }) => username), label).toEqual([]);
}

/** Every token issued before the kill that has not expired verifies against the restarted server's JWKS. */
async function expectUnexpiredTokensVerify(server: RunningServer, ledger: Ledger, iteration: number): Promise<void> {
  const jwks = await fetchJwks(server.url);
  // Taken after the answer: the server served the JWKS at this second or earlier, and a token
  // that expires later was signed by a key whose publication ends later still.
  const servedBy = new Date();
  recordJwks(ledger, jwks, `JWKS after restart ${String(iteration)}`);
  const keySet = createLocalJWKSet(jwks);
  const unexpired = ledger.tokens.filter(({ exp }) => exp > Math.floor(servedBy.getTime() / 1000));
  const failures: string[] = [];
  for (const issued of unexpired) {
    try {
      await jwtVerify(issued.token, keySet, { issuer: ISSUER, currentDate: servedBy });
      ledger.verifiedTokens.add(issued.token);
    } catch (error) {
      failures.push(`token of iteration ${String(issued.iteration)}, kid ${issued.kid}, exp ${String(issued.exp)}: ${String(error)}`);
    }
  }
  expect(failures, `after restart ${String(iteration)}`).toEqual([]);
}

/** Each password a 201 handed out opens the account: a token for that user, with a checked password (amr pwd). */
async function expectPasswordsAuthenticate(server: RunningServer, ledger: Ledger, iteration: number): Promise<void> {
  const unchecked = ledger.registrations.filter((registration) => !registration.passwordChecked);
  const failures = await Promise.all(
    unchecked.map(async (registration) => {
      const response = await fetch(`${server.url}/auth`, { method: 'POST', headers: { authorization: basic(registration.username, registration.password) } });
      const body = await response.text();
      if (response.status !== 200) return `${registration.username}: ${String(response.status)} ${body}`;
      const { token } = JSON.parse(body) as { token: string };
      const { sub, amr } = decodeJwt(token);
      if (sub !== registration.username || !Array.isArray(amr) || !amr.includes('pwd')) return `${registration.username}: token for ${String(sub)}, amr ${JSON.stringify(amr)}`;
      recordToken(ledger, token, iteration);
      registration.passwordChecked = true;
      return undefined;
    }),
  );
  expect(
    failures.filter((failure) => failure !== undefined),
    `after restart ${String(iteration)}`,
  ).toEqual([]);
}

describe('a server on SQLite killed with SIGKILL under load', () => {
  test(
    `keeps its file intact, every key it published, every user it confirmed, and its tokens verifying, over ${String(KILLS)} kills`,
    async () => {
      const databasePath = join(temporaryDirectory(), 'keys.db');
      // Each key signs for 2 s, so the scheduler publishes a successor every other second, many of
      // them during a load; nothing is pruned, so every key ever published must still be stored.
      const variables = {
        DATABASE_URL: databasePath,
        ISSUER,
        KEY_TTL: '2',
        TOKEN_TTL: '2',
        JWKS_MAX_AGE: '1',
        EXPIRED_KEY_RETENTION: String(TEN_YEARS_SECONDS),
        RATE_LIMIT_MAX: '0',
      };
      const ledger = newLedger();
      const random = seededRandom(SEED);
      const killMoments: number[] = [];
      onTestFailed(() => {
        console.error(`crash-safety: CRASH_SAFETY_SEED=${String(SEED)} replays these kill moments (ms into each load): ${killMoments.join(', ')}`);
      });

      let server = await startServer(variables);
      for (let iteration = 1; iteration <= KILLS; iteration += 1) {
        const killAfterMs = KILL_WINDOW_MS.earliest + Math.floor(random() * (KILL_WINDOW_MS.latest - KILL_WINDOW_MS.earliest));
        killMoments.push(killAfterMs);
        await loadAndKill(server, variables, ledger, iteration, killAfterMs);
        expect(ledger.unexpected, `load of iteration ${String(iteration)}`).toEqual([]);

        expectIntactFile(databasePath, iteration);
        await expectNothingLost(databasePath, ledger, iteration);
        server = await startServer(variables);
        await expectUnexpiredTokensVerify(server, ledger, iteration);
        await expectPasswordsAuthenticate(server, ledger, iteration);
      }
      expect(await server.stop()).toBe(0);

      // The run proved something only if the kills cut requests off and there was much to check.
      expect(ledger.cutOff).toBeGreaterThan(0);
      expect(ledger.verifiedTokens.size).toBeGreaterThan(0);
      expect(ledger.registrations.length).toBeGreaterThan(0);
      expect(ledger.cliRotations).toBeGreaterThanOrEqual(KILLS / 2);
    },
    90_000,
  );
});
