/** The built server and CLI as separate processes, the way `npm start` and operators run them. */
import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect, onTestFinished } from 'vitest';
import { serverEnvironment, type RegisterCleanup } from './helpers.js';

export const SERVER_ENTRY = fileURLToPath(new URL('../dist/server/server.js', import.meta.url));
export const CLI_ENTRY = fileURLToPath(new URL('../dist/src/server/cli.js', import.meta.url));

export interface RunningServer {
  url: string;
  child: ChildProcess;
  logLines: string[];
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** When the process group is killed: at the end of the current test unless told otherwise. */
  registerCleanup?: RegisterCleanup | undefined;
}

/**
 * `file` with `args`, in a process group of its own that is killed when the test ends, so that a
 * test that fails stops every process the command started too (npm and its shell, WORKERS).
 */
export function spawnInOwnGroup(file: string, args: readonly string[], { cwd, env, registerCleanup = onTestFinished }: SpawnOptions): ChildProcessByStdio<null, Readable, Readable> {
  const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  registerCleanup(() => {
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL');
    } catch {
      // Every process of the group has exited already.
    }
  });
  return child;
}

export interface ServerProcessOptions {
  /** The server's working directory, where its default SQLite file goes. Default: this process's. */
  cwd?: string | undefined;
  /** When the server is killed: at the end of the current test unless told otherwise. */
  registerCleanup?: RegisterCleanup | undefined;
}

/** `node dist/server/server.js` on loopback with `variables`, in a process group of its own. */
function spawnServer(variables: Record<string, string>, { cwd = process.cwd(), registerCleanup }: ServerProcessOptions = {}): ChildProcessByStdio<null, Readable, Readable> {
  return spawnInOwnGroup(process.execPath, [SERVER_ENTRY], { cwd, env: serverEnvironment({ HOST: '127.0.0.1', ...variables }), registerCleanup });
}

/** Runs the server until it exits by itself (a failed start): its exit code and what it printed. */
export async function runServerToExit(variables: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnServer(variables);
  let [stdout, stderr] = ['', ''];
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Starts `node dist/server/server.js` on a free loopback port (PORT=0) and waits until it listens. */
export async function startServer(variables: Record<string, string>, options: ServerProcessOptions = {}): Promise<RunningServer> {
  const child = spawnServer({ PORT: '0', ...variables }, options);
  // Kept too, for the error of a start that fails: the reason is in what the server printed there.
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    process.stderr.write(chunk);
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const logLines: string[] = [];
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      logLines.push(line);
      const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      if (listening?.[1] !== undefined) resolve(listening[1]);
    });
    void exited.then((code) => {
      reject(new Error(`server exited with ${String(code)} before listening:\n${[...logLines, stderr].join('\n')}`));
    });
  });
  return {
    url,
    child,
    logLines,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface AuthRequest {
  query?: string;
  authorization?: string | undefined;
  /** The connection's source address, which the server sees as the client's (any 127.x.y.z on Linux). */
  localAddress?: string;
}

/** `POST /auth` on a connection of its own, as a new client would make it: node:cluster hands out connections, not requests. */
export function requestAuthOnNewConnection(baseUrl: string, { query = '', authorization, localAddress }: AuthRequest = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers = authorization === undefined ? {} : { authorization };
    const request = http.request(`${baseUrl}/auth${query}`, { method: 'POST', headers, localAddress, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body });
      });
      // A server killed in the middle of the answer cuts it off: ECONNRESET here, not an 'end'.
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

/** The token of a `POST /auth` on a connection of its own; rejects on any status but 200. */
export async function postAuthOnNewConnection(baseUrl: string): Promise<string> {
  const { status, body } = await requestAuthOnNewConnection(baseUrl);
  if (status !== 200) throw new Error(`POST /auth answered ${String(status)}: ${body}`);
  return (JSON.parse(body) as { token: string }).token;
}

export async function postAuth(baseUrl: string, query = ''): Promise<string> {
  const response = await fetch(`${baseUrl}/auth${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'userABC', password: 'password123' }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { token: string }).token;
}

/** Where a server logged that it serves its metrics (METRICS_PORT). */
export function metricsUrl(logLines: readonly string[]): string {
  for (const line of logLines) {
    if (!line.includes('"metrics listening"')) continue;
    return (JSON.parse(line) as { url: string }).url;
  }
  throw new Error(`the server logged no metrics listener:\n${logLines.join('\n')}`);
}
