/**
 * The course grader's start, done the way it does it: from the project folder it launches the
 * README's run command, waits exactly one second, reads the database file itself (project 3), then
 * sends `POST /auth` with a 2 s time-out and checks the token against the JWKS. Those timings are
 * the grader's contract, not a stopwatch, so this file runs alone (vitest.config.ts), where no
 * other test shares the two cores with the server's start.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { Kysely, SqliteDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DATABASE_PATH } from '../src/server/config.js';
import { basic, serverEnvironment, temporaryDirectory } from './helpers.js';
import { freePort } from './free-port.js';
import { spawnInOwnGroup } from './server-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The grader's wait between launching the run command and its first request, and its HTTP time-out. */
const GRADER_WAIT_MS = 1000;
const GRADER_TIMEOUT_MS = 2000;

/** A project folder as a user has it after `npm ci`: the package, its start script and build, and node_modules (shared). */
function projectFolder({ built }: { built: boolean }): string {
  const directory = temporaryDirectory();
  cpSync(join(ROOT, 'package.json'), join(directory, 'package.json'));
  cpSync(join(ROOT, 'scripts'), join(directory, 'scripts'), { recursive: true });
  if (built) cpSync(join(ROOT, 'dist'), join(directory, 'dist'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(directory, 'node_modules'));
  return directory;
}

/** `npm start` through the npm that runs this suite (npm test), else the one on the PATH. */
function npmStart(): [string, string[]] {
  const npm = process.env.npm_execpath;
  return npm?.endsWith('.js') === true ? [process.execPath, [npm, 'start']] : ['npm', ['start']];
}

const RUN_COMMANDS = {
  'npm start': npmStart,
  'node dist/server/server.js': (): [string, string[]] => [process.execPath, ['dist/server/server.js']],
};
type RunCommand = keyof typeof RUN_COMMANDS;

interface Launched {
  child: ChildProcess;
  output: () => string;
}

/** Launches `command` in `directory`, in a process group of its own (npm, its shell and the server), killed when the test ends. */
function launch(command: RunCommand, directory: string, variables: Record<string, string>): Launched {
  const [file, args] = RUN_COMMANDS[command]();
  const child = spawnInOwnGroup(file, args, { cwd: directory, env: serverEnvironment(variables) });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

/** The tables in the SQLite file, read the way the grader reads it: its own read-only connection. */
async function tablesIn(path: string): Promise<string[]> {
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new Database(path, { readonly: true, fileMustExist: true }) }) });
  try {
    return (await db.introspection.getTables()).map((table) => table.name);
  } finally {
    await db.destroy();
  }
}

async function postAuth(baseUrl: string, query = ''): Promise<string> {
  // The grader's first try: a form body with Basic credentials.
  const response = await fetch(`${baseUrl}/auth${query}`, {
    method: 'POST',
    headers: { authorization: basic('userABC', 'password123'), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'username=userABC&password=password123',
    signal: AbortSignal.timeout(GRADER_TIMEOUT_MS),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { token: string }).token;
}

async function fetchJwks(baseUrl: string): Promise<JSONWebKeySet> {
  const response = await fetch(`${baseUrl}/.well-known/jwks.json`, { signal: AbortSignal.timeout(GRADER_TIMEOUT_MS) });
  expect(response.status).toBe(200);
  return (await response.json()) as JSONWebKeySet;
}

/**
 * One grading run: launch, wait a second, the database file holds the schema, `POST /auth`
 * answers a token the JWKS verifies, the expired token's key is not published; then SIGTERM.
 * Returns the valid token and the JWKS it was checked against.
 */
async function gradeOnce(command: RunCommand, directory: string, variables: Record<string, string> = {}): Promise<{ token: string; jwks: JSONWebKeySet }> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${String(port)}`;
  const { child, output } = launch(command, directory, { PORT: String(port), ...variables });
  const exited = once(child, 'exit');
  await sleep(GRADER_WAIT_MS);
  try {
    expect(await tablesIn(join(directory, DEFAULT_DATABASE_PATH))).toEqual(expect.arrayContaining(['keys', 'users', 'auth_logs']));
    const token = await postAuth(baseUrl);
    const jwks = await fetchJwks(baseUrl);
    await expect(jwtVerify(token, createLocalJWKSet(jwks))).resolves.toBeDefined();
    const expired = await postAuth(baseUrl, '?expired=true');
    expect(jwks.keys.map((key) => key.kid)).not.toContain(decodeProtectedHeader(expired).kid);
    process.kill(-(child.pid ?? 0), 'SIGTERM');
    const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
    // npm itself dies of the signal it passes on; the server exits cleanly.
    expect(command === 'npm start' ? signal : code).toBe(command === 'npm start' ? 'SIGTERM' : 0);
    return { token, jwks };
  } catch (error) {
    throw new Error(`${command} failed the grader's checks; it printed:\n${output()}`, { cause: error });
  }
}

describe("the course grader's start: first request one second after launch, answered within two", () => {
  it.each(Object.keys(RUN_COMMANDS) as RunCommand[])('%s, on a new database and again on the database it made', async (command) => {
    const directory = projectFolder({ built: true });
    const first = await gradeOnce(command, directory);
    const second = await gradeOnce(command, directory);
    // The restarted server kept its keys: the first run's token still verifies.
    await expect(jwtVerify(first.token, createLocalJWKSet(second.jwks))).resolves.toBeDefined();
  });

  it('npm start with NOT_MY_KEY (project 3), on a new database', async () => {
    await gradeOnce('npm start', projectFolder({ built: true }), { NOT_MY_KEY: 'a-grader-secret-of-some-length' });
  });

  it('npm start builds nothing: without a build it says what to run, in one line, and exits 1', async () => {
    const directory = projectFolder({ built: false });
    const { child, output } = launch('npm start', directory, { PORT: String(await freePort()) });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(output()).toContain('jwks-server is not built: run `npm run build` (npm install and npm ci build it too), then `npm start` again.');
    expect(output()).not.toMatch(/\bat .+:\d+:\d+/);
  });
});

