/** The load the crash-safety test puts on a server until it kills it, and its ledger of what the server answered. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, decodeProtectedHeader, type JSONWebKeySet } from 'jose';
import { expect, onTestFinished } from 'vitest';
import { basic, serverEnvironment } from './helpers.js';
import { CLI_ENTRY, type RunningServer } from './server-process.js';

const PARALLEL_TOKEN_REQUESTS = 4;
const PARALLEL_REGISTRATIONS = 2;
// Scheduled rotations change the JWKS at most once a second: polling faster would only take the
// two cores away from the writers whose crash this test is about.
const JWKS_POLL_INTERVAL_MS = 50;
// A registered user's token goes through the one transaction that writes two tables
// (auth_logs and users.last_login); every fifth token request exercises it.
const REGISTERED_USER_EVERY = 5;
const EXPIRED_TOKEN_EVERY = 7;

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
export interface Ledger {
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

export function newLedger(): Ledger {
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

export function recordToken(ledger: Ledger, token: string, iteration: number): void {
  const kid = decodeProtectedHeader(token).kid ?? '';
  ledger.tokens.push({ token, kid, exp: decodeJwt(token).exp ?? 0, iteration });
  noteKid(ledger, kid, `token of iteration ${String(iteration)}`);
}

export async function fetchJwks(url: string): Promise<JSONWebKeySet> {
  return JSON.parse(await answerOf(await fetch(`${url}/.well-known/jwks.json`), 200, 'GET /.well-known/jwks.json')) as JSONWebKeySet;
}

export function recordJwks(ledger: Ledger, jwks: JSONWebKeySet, source: string): void {
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
export async function loadAndKill(server: RunningServer, variables: Record<string, string>, ledger: Ledger, iteration: number, killAfterMs: number): Promise<void> {
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
