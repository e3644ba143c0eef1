/**
 * Crash safety on SQLite: a server killed with SIGKILL while it issues tokens, registers users
 * and rotates keys leaves a file that is intact, keeps every key it published and every user it
 * confirmed, and serves on after a restart with the tokens it issued before still verifying.
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { describe, expect, onTestFailed, test } from 'vitest';
import { loadSqliteDriver } from '../src/database/sqlite-driver.js';
import { readDatabase, temporaryDirectory } from './helpers.js';
import { startServer, type RunningServer } from './server-process.js';
import { fetchJwks, loadAndKill, newLedger, recordJwks, recordToken, requestToken, type Ledger } from './crash-load.js';

const SQLite = await loadSqliteDriver();

const KILLS = 20;
const ISSUER = 'https://id.example.com';
const TEN_YEARS_SECONDS = 10 * 365 * 24 * 3600;
const KILL_WINDOW_MS = { earliest: 150, latest: 1200 };
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
 * registration is there once; every token request answered has its auth_logs row.
 */
async function expectNothingLost(databasePath: string, ledger: Ledger, iteration: number): Promise<void> {
  const { keyKids, lifecycleKids, users, authLogs } = await readDatabase(databasePath, async (db) => ({
    keyKids: (await db.selectFrom('keys').select('kid').orderBy('kid').execute()).map(({ kid }) => String(kid)),
    lifecycleKids: (await db.selectFrom('key_lifecycle').select('kid').orderBy('kid').execute()).map(({ kid }) => String(kid)),
    users: await db.selectFrom('users').select(['id', 'username', 'email', 'password_hash', 'date_registered', 'last_login']).execute(),
    authLogs: await db.selectFrom('auth_logs').select(['request_ip', 'user_id']).execute(),
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
  // Each request came from an address of its own: its row is the one row from that address, naming
  // its user, whatever the rows of the requests the kill cut off.
  const userIds = new Map(users.map((user) => [user.username, user.id]));
  const loggedIn = new Set(users.filter((user) => user.last_login !== null).map((user) => user.username));
  const loggedUserIds = new Map<string, (number | null)[]>();
  for (const { request_ip, user_id } of authLogs) loggedUserIds.set(request_ip, [...(loggedUserIds.get(request_ip) ?? []), user_id]);
  const notLogged = ledger.tokens.flatMap(({ requestIp, username, iteration: answeredIn }) => {
    const logged = loggedUserIds.get(requestIp) ?? [];
    const userId = username === undefined ? null : userIds.get(username);
    const lastLoginSet = username === undefined || loggedIn.has(username);
    if (logged.length === 1 && logged[0] === userId && lastLoginSet) return [];
    const user = username === undefined ? 'no user' : `${username}, id ${String(userId)}, last_login ${lastLoginSet ? 'set' : 'null'}`;
    return [`token from ${requestIp} (iteration ${String(answeredIn)}, ${user}): rows with user_id [${logged.map(String).join(', ')}]`];
  });
  expect(notLogged, label).toEqual([]);
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
      const answer = await requestToken(server.url, (ledger.nextTokenRequest += 1), registration);
      if (answer.status !== 200) return `${registration.username}: ${String(answer.status)} ${answer.body}`;
      const { token } = JSON.parse(answer.body) as { token: string };
      const { sub, amr } = decodeJwt(token);
      if (sub !== registration.username || !Array.isArray(amr) || !amr.includes('pwd')) return `${registration.username}: token for ${String(sub)}, amr ${JSON.stringify(amr)}`;
      recordToken(ledger, token, iteration, answer, registration);
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
