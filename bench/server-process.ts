/**
 * A process the benchmarks drive (the built server, the bare-Fastify baseline) on a free loopback
 * port, and what /proc tells of it (Linux): its CPU time and resident memory, with its children.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export interface RunningProcess {
  child: ChildProcess;
  baseUrl: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Polls every 5 ms until `probe` holds, within 30 s; resolves with the milliseconds since `since`. */
export async function timeUntil(probe: () => Promise<boolean>, since: number, what: string): Promise<number> {
  const timeoutMs = 30_000;
  while (!(await probe())) {
    if (performance.now() - since > timeoutMs) throw new Error(`${what} did not answer within ${String(timeoutMs)} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - since;
}

/** Resolves with the milliseconds it took for `url` to answer 200 (not listening yet counts as no). */
function waitForOk(url: string, since: number): Promise<number> {
  return timeUntil(async () => (await fetch(url).catch(() => undefined))?.ok === true, since, url);
}

/** Starts `entry` with only PATH, `env` and PORT in its environment; resolves once `readyPath` answers 200. */
export async function startProcess(entry: string, env: Record<string, string>, readyPath: string): Promise<RunningProcess & { startupMs: number }> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [entry], { env: { PATH: process.env.PATH, ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
  const baseUrl = `http://127.0.0.1:${String(port)}`;
  const startupMs = await waitForOk(`${baseUrl}${readyPath}`, started);
  return {
    child,
    baseUrl,
    startupMs,
    stop: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** `pid` and its children: with WORKERS, the server is a primary and its workers. */
function processTree(pid: number | undefined): number[] {
  try {
    const children = readFileSync(`/proc/${String(pid)}/task/${String(pid)}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
    return [pid ?? 0, ...children];
  } catch {
    return [pid ?? 0];
  }
}

/** CPU seconds (user + system) the process `pid` and its children have used so far, from /proc (Linux). */
export function processCpuSeconds(pid: number | undefined): number {
  return processTree(pid).reduce((total, each) => {
    const fields = readFileSync(`/proc/${String(each)}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    return total + (Number(fields[11]) + Number(fields[12])) / 100;
  }, 0);
}

export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** The resident set size (VmRSS) of `pid` and its children, in MB; throws once the process has gone. */
export function residentSetMb(pid: number | undefined): number {
  const kilobytes = processTree(pid).map((each) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${String(each)}/status`, 'utf8'))?.[1] ?? 0));
  return kilobytes.reduce((total, each) => total + each, 0) / 1024;
}
