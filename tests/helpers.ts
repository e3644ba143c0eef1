import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { decodeProtectedHeader, decodeJwt } from 'jose';
import { CompiledQuery, type Kysely } from 'kysely';
import { expect, onTestFinished } from 'vitest';
import { buildApp, type AppOptions } from '../src/app.js';
import type { Clock } from '../src/clock.js';
import { openDatabase } from '../src/database/connection.js';
import type { Database } from '../src/database/schema.js';

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

/** A fresh directory for database files, removed when the test ends. */
export function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'jwks-server-test-'));
  onTestFinished(() => {
    rmSync(directory, { recursive: true, force: true });
  });
  return directory;
}

/** The real app on an in-memory database (unless told otherwise), ready, and closed when the test ends. */
export async function readyApp(options: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  const app = buildApp({ databasePath: ':memory:', ...options });
  onTestFinished(async () => {
    await app.close();
  });
  await app.ready();
  return app;
}

/** A migrated database, destroyed when the test ends. */
export async function openTestDatabase(path = ':memory:'): Promise<Kysely<Database>> {
  const db = await openDatabase(path);
  onTestFinished(async () => {
    await db.destroy();
  });
  return db;
}

/** Writes a key the way the course's servers do: a `keys` row and nothing else. */
export async function insertCourseKey(db: Kysely<Database>, pem: string, exp: number): Promise<number> {
  const { insertId } = await db.executeQuery(CompiledQuery.raw('INSERT INTO keys (key, exp) VALUES (?, ?)', [Buffer.from(pem), exp]));
  return Number(insertId);
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
  'NOT_MY_KEY',
  'TRUST_PROXY',
  'RATE_LIMIT_MAX',
  'RATE_LIMIT_WINDOW_MS',
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
