/**
 * Launch to first answer, the figure the course grader lives by (it sends `POST /auth` one second
 * after launching the run command): for `npm start`, the bundled server run directly, and the
 * unbundled tsc output beside them, each on a new and on an existing database, the median of
 * several launches. Each launch also times the moment its port accepts a connection, and Node.js
 * alone (`node -e 0`) is timed beside them, which splits the start into its parts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, timeUntil } from './server-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface LaunchCommand {
  name: string;
  file: string;
  args: string[];
}

const COMMANDS: LaunchCommand[] = [
  { name: 'npm start', file: 'npm', args: ['start'] },
  { name: 'node dist/server/server.js', file: process.execPath, args: ['dist/server/server.js'] },
  { name: 'node dist/src/server/server.js (unbundled)', file: process.execPath, args: ['dist/src/server/server.js'] },
];

export interface LaunchFigures {
  command: string;
  database: 'new' | 'existing';
  /** Median milliseconds from launch until the port accepted a connection. */
  portBoundMs: number;
  /** Median milliseconds from launch until `POST /auth` was answered 200. */
  firstAnswerMs: number;
}

export interface LaunchResults {
  launches: number;
  /** Median milliseconds for `node -e 0` to start and exit: Node.js's own share of every launch. */
  nodeAloneMs: number;
  figures: LaunchFigures[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0);
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

async function launchOnce({ file, args }: LaunchCommand, databasePath: string): Promise<{ portBoundMs: number; firstAnswerMs: number }> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(file, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: databasePath, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  try {
    const portBoundMs = await timeUntil(() => connects(port), started, `port ${String(port)}`);
    // The request waits, held, for the service: it is sent once and answered when the service is ready.
    const url = `http://127.0.0.1:${String(port)}/auth`;
    const firstAnswerMs = await timeUntil(async () => (await fetch(url, { method: 'POST' }).catch(() => undefined))?.status === 200, started, `POST ${url}`);
    return { portBoundMs, firstAnswerMs };
  } finally {
    const exited = once(child, 'exit');
    process.kill(-(child.pid ?? 0), 'SIGTERM');
    await exited;
  }
}

async function nodeAlone(): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await once(child, 'exit');
  return performance.now() - started;
}

/** `launches` launches of each command on each kind of database, in turns so that drift falls on all alike. */
export async function measureLaunch(directory: string, launches: number): Promise<LaunchResults> {
  const samples = new Map<string, { portBoundMs: number[]; firstAnswerMs: number[] }>();
  const nodeAloneMs: number[] = [];
  for (let round = 0; round < launches; round += 1) {
    nodeAloneMs.push(await nodeAlone());
    for (const command of COMMANDS) {
      const databasePath = join(directory, `launch-${String(round)}.db`);
      for (const database of ['new', 'existing'] as const) {
        // The new database is made by the first launch; the second starts on what it made.
        if (database === 'new') rmSync(databasePath, { force: true });
        const { portBoundMs, firstAnswerMs } = await launchOnce(command, databasePath);
        const key = `${command.name}\u0000${database}`;
        const entry = samples.get(key) ?? { portBoundMs: [], firstAnswerMs: [] };
        entry.portBoundMs.push(portBoundMs);
        entry.firstAnswerMs.push(firstAnswerMs);
        samples.set(key, entry);
      }
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${databasePath}${suffix}`, { force: true });
    }
  }
  const figures = [...samples].map(([key, entry]) => {
    const [command = '', database] = key.split('\u0000');
    return { command, database: database === 'new' ? ('new' as const) : ('existing' as const), portBoundMs: median(entry.portBoundMs), firstAnswerMs: median(entry.firstAnswerMs) };
  });
  return { launches, nodeAloneMs: median(nodeAloneMs), figures };
}
