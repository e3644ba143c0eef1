/** The load the crash-safety test puts on a server until it kills it, and its ledger of what the server answered. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, decodeProtectedHeader, type JSONWebKeySet } from 'jose';
import { expect, onTestFinished } from 'vitest';
import { basic, serverEnvironment } from './helpers.js';
import { CLI_ENTRY, requestAuthOnNewConnection, type HttpAnswer, type RunningServer } from './server-process.js';

// Sixteen token requests in flight at once, so that several rows can share a commit; against them
// two registration clients got half as many users in as before, four keep their share of the cores.
const PARALLEL_TOKEN_REQUESTS = 16;
const PARALLEL_REGISTRATIONS = 4;
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
  /** The source address the request came from, which names its auth_logs row. */
  requestIp: string;
  /** The registered user it was issued to, if any. */
  username: string | undefined;
}

export interface Registration {
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

function bodyOf({ status, body }: HttpAnswer, expectedStatus: number, what: string): string {
  if (status !== expectedStatus) throw new UnexpectedAnswer(`${what} answered ${String(status)}: ${body}`);
  return body;
}

async function answerOf(response: Response, expectedStatus: number, what: string): Promise<string> {
  return bodyOf({ status: response.status, body: await response.text() }, expectedStatus, what);
}

/**
 * The loopback address token request `number` comes from. On Linux every 127.x.y.z is local, so
 * each request can have an address of its own, which the server logs as its request_ip: the one
 * way to tell an answered request's auth_logs row from the rows of requests the kill cut off.
 * They start at 127.1.0.0, clear of 127.0.0.1, which every other request comes from.
 */
function tokenRequestAddress(number: number): string {
  const offset = 0x01_00_00 + number;
  return `127.${String((offset >>> 16) & 0xff)}.${String((offset >>> 8) & 0xff)}.${String(offset & 0xff)}`;
}

export interface TokenAnswer extends HttpAnswer {
  requestIp: string;
}

/** Token request `number`: `POST /auth` (as `user`, if given) on a connection of its own, from the request's own address. */
export async function requestToken(url: string, number: number, user: Registration | undefined, query = ''): Promise<TokenAnswer> {
  const requestIp = tokenRequestAddress(number);
  const authorization = user === undefined ? undefined : basic(user.username, user.password);
  return { requestIp, ...(await requestAuthOnNewConnection(url, { query, authorization, localAddress: requestIp })) };
}

export function recordToken(ledger: Ledger, token: string, iteration: number, { requestIp }: TokenAnswer, user: Registration | undefined): void {
  const kid = decodeProtectedHeader(token).kid ?? '';
  ledger.tokens.push({ token, kid, exp: decodeJwt(token).exp ?? 0, iteration, requestIp, username: user?.username });
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
  const answer = await requestToken(url, number, user, query);
  const body = bodyOf(answer, 200, `POST /auth${query} from ${answer.requestIp}`);
  recordToken(ledger, (JSON.parse(body) as { token: string }).token, iteration, answer, user);
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
