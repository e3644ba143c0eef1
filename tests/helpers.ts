import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { decodeProtectedHeader, decodeJwt } from 'jose';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, expect, inject, onTestFinished } from 'vitest';
import { buildApp, type AppOptions } from '../src/app.js';
import type { Clock } from '../src/common/clock.js';
import { openDatabase } from '../src/database/connection.js';
import type { Dialect } from '../src/database/dialect.js';
import type { Database } from '../src/database/schema.js';
import type { KeyMetadata } from '../src/keys/key-lifecycle.js';
import { createKeyStore } from '../src/keys/key-store.js';

export interface ManualClock {
  clock: Clock;
  now(): number;
  advance(seconds: number): void;
}

/** A clock that only moves when told to, starting at the real time. */
export function manualClock(start = Math.floor(Date.now() / 1000)): ManualClock {
  let current = start;
  return {
    clock: () => current,
    now: () => current,
    advance(seconds) {
      current += seconds;
    },
  };
}

/**
 * Where a helper registers what undoes it (removes a directory, drops a database, kills a
 * process): by default the end of the current test; {@link cleanupAfterAll} for what a file's
 * tests share.
 */
export type RegisterCleanup = (cleanup: () => Promise<void> | void) => void;

/**
 * Registers cleanups of what is made in `beforeAll` and shared by the tests of the suite it is
 * called in: run after the suite's last test, the last registered first. Call it while the suite
 * is being collected, not inside a hook.
 */
export function cleanupAfterAll(): RegisterCleanup {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return (cleanup) => {
    cleanups.push(cleanup);
  };
}

/** A fresh directory for database files, removed when the test ends (or when told). */
export function temporaryDirectory(registerCleanup: RegisterCleanup = onTestFinished): string {
  const directory = mkdtempSync(join(tmpdir(), 'jwks-server-test-'));
  registerCleanup(() => {
    rmSync(directory, { recursive: true, force: true });
  });
  return directory;
}

/** The database this run of the suite is on: each vitest project sets TEST_DATABASE (vitest.config.ts). */
export const testDialect: Dialect = process.env.TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite';

async function onPostgresServer(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('postgresUrl') });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/**
 * A new, empty database that lives until the test ends (or until the cleanup registered ends
 * it), for tests that open it more than once or from another process: a SQLite file in a
 * temporary directory, or a database of its own on the test PostgreSQL server.
 */
export async function newTestDatabase(registerCleanup: RegisterCleanup = onTestFinished): Promise<string> {
  if (testDialect === 'sqlite') return join(temporaryDirectory(registerCleanup), 'keys.db');
  return newPostgresDatabase(registerCleanup);
}

/** A new, empty database of its own on the test PostgreSQL server, whichever database the suite is on. */
export async function newPostgresDatabase(registerCleanup: RegisterCleanup = onTestFinished): Promise<string> {
  const name = `jwks_test_${randomBytes(8).toString('hex')}`;
  await onPostgresServer(`CREATE DATABASE ${name}`);
  registerCleanup(async () => {
    await onPostgresServer(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
  const url = new URL(inject('postgresUrl'));
  url.pathname = `/${name}`;
  return url.toString();
}

/** A database for one connection: `:memory:` on SQLite, a new database on PostgreSQL. */
async function scratchTestDatabase(): Promise<string> {
  return testDialect === 'sqlite' ? ':memory:' : newTestDatabase();
}

/** The real app on a scratch database (unless told otherwise), ready, and closed when the test ends. */
export async function readyApp(options: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  const app = buildApp({ databaseUrl: options.databaseUrl ?? (await scratchTestDatabase()), ...options });
  onTestFinished(async () => {
    await app.close();
  });
  await app.ready();
  return app;
}

/** A migrated database (a scratch one unless told otherwise), destroyed when the test ends. */
export async function openTestDatabase(url?: string): Promise<Kysely<Database>> {
  const db = await openDatabase(url ?? (await scratchTestDatabase()));
  onTestFinished(async () => {
    await db.destroy();
  });
  return db;
}

/** Reads the database at `url` on a connection of its own, opened now and closed after, as another process would. */
export async function readDatabase<T>(url: string, read: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const db = await openDatabase(url);
  try {
    return await read(db);
  } finally {
    await db.destroy();
  }
}

/** Every key's metadata in the database at `url`, read on a connection of its own. */
export function storedKeys(url: string): Promise<KeyMetadata[]> {
  return readDatabase(url, (db) => createKeyStore(db).listKeys());
}

/** Writes a key the way the course's servers do: a `keys` row and nothing else. */
export async function insertCourseKey(db: Kysely<Database>, pem: string, exp: number): Promise<number> {
  const { kid } = await db.insertInto('keys').values({ key: Buffer.from(pem), exp }).returning('kid').executeTakeFirstOrThrow();
  return kid;
}

export async function countKeys(app: FastifyInstance): Promise<number> {
  const { count } = await app.database
    .selectFrom('keys')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  return count;
}

/** Header and claims of a compact JWT, unverified. */
export function decodeToken(token: string) {
  return { header: decodeProtectedHeader(token), claims: decodeJwt(token) };
}

// Every variable the server and the CLI read: a process a test spawns must not pick them up from
// the shell that runs the tests.
const SERVER_ENV_VARIABLES = [
  'HOST',
  'PORT',
  'DATABASE_URL',
  'KEY_TTL',
  'TOKEN_TTL',
  'JWKS_MAX_AGE',
  'EXPIRED_KEY_RETENTION',
  'ALGORITHMS',
  'LOG_LEVEL',
  'ISSUER',
  'AUDIENCE',
  'AUTH_MODE',
  'OAUTH_PASSWORD_GRANT',
  'NOT_MY_KEY',
  'TRUST_PROXY',
  'RATE_LIMIT_MAX',
  'RATE_LIMIT_WINDOW_MS',
  'DATABASE_POOL_SIZE',
  'WORKERS',
  'REDIS_URL',
  'METRICS',
  'METRICS_PORT',
];

/** This process's environment without the server's variables, plus `variables`: for spawned servers and CLIs. */
export function serverEnvironment(variables: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of SERVER_ENV_VARIABLES) Reflect.deleteProperty(env, name);
  return { ...env, ...variables };
}

export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Asserts the JSON error shape, with no stack trace or key material, and returns its message. */
export function expectJsonError(response: LightMyRequestResponse, statusCode: number): string {
  expect(response.statusCode).toBe(statusCode);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = response.json<Record<string, unknown>>();
  expect(Object.keys(body).sort()).toEqual(['error', 'message', 'statusCode']);
  expect(body.statusCode).toBe(statusCode);
  expect(response.body).not.toMatch(/\bat .+:\d+:\d+|BEGIN|PRIVATE/);
  if (typeof body.message !== 'string') throw new Error('the error message is not a string');
  return body.message;
}
