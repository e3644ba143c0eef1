/** The admin CLI's test fixtures: the CLI run in this process, and SQLite files seeded as a server leaves them. */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { main } from '../src/server/admin-cli.js';
import type { SigningAlgorithm } from '../src/keys/algorithms.js';
import { systemClock } from '../src/common/clock.js';
import { openDatabase } from '../src/database/connection.js';
import { prepareKeyCipher } from '../src/keys/key-cipher.js';
import type { RotationPolicy } from '../src/keys/key-lifecycle.js';
import { createKeyStore } from '../src/keys/key-store.js';
import type { Jwks } from '../src/keys/keyring.js';
import { temporaryDirectory } from './helpers.js';

// The schedule the CLI uses when KEY_TTL, TOKEN_TTL and JWKS_MAX_AGE are unset.
export const DEFAULT_POLICY: RotationPolicy = { keyTtlSeconds: 3600, tokenTtlSeconds: 900, leadSeconds: 300 };
export const USAGE_HEADING = 'Usage: jwks-server keys <command>';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with only `env` as its environment, capturing what it prints. */
export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const output = {
    out: (text: string) => {
      stdout.push(text);
    },
    err: (text: string) => {
      stderr.push(text);
    },
  };
  const code = await main(args, env, output);
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

// Seeding generates keys, the slow part: each kind of database is seeded once per test file (each
// file loads this module afresh, and removes its templates when it ends) and copied for every test.
const TEMPLATE_DIRECTORY = mkdtempSync(join(tmpdir(), 'jwks-server-cli-templates-'));
afterAll(() => {
  rmSync(TEMPLATE_DIRECTORY, { recursive: true, force: true });
});
const templates = new Map<string, Promise<string>>();

interface SeedOptions {
  algorithms?: readonly SigningAlgorithm[];
  secret?: string;
}

async function seedTemplate(templatePath: string, { algorithms = ['RS256'], secret }: SeedOptions): Promise<string> {
  const db = await openDatabase(templatePath);
  try {
    const { cipher } = await prepareKeyCipher(db, secret);
    await createKeyStore(db, cipher).maintain(systemClock(), algorithms, DEFAULT_POLICY);
  } finally {
    // Closing the last connection checkpoints the write-ahead log into the file, so a copy of it is whole.
    await db.destroy();
  }
  return templatePath;
}

/**
 * A database file of its own, as a server leaves it on first start: per algorithm, in order, an
 * active key, a published successor and an expired key (kids 1, 2 and 3 for the first algorithm).
 */
export async function seededDatabase(options: SeedOptions = {}): Promise<string> {
  const name = JSON.stringify([options.algorithms ?? ['RS256'], options.secret ?? null]);
  let template = templates.get(name);
  if (template === undefined) {
    template = seedTemplate(join(TEMPLATE_DIRECTORY, `${String(templates.size)}.db`), options);
    templates.set(name, template);
  }
  const databasePath = join(temporaryDirectory(), 'keys.db');
  copyFileSync(await template, databasePath);
  return databasePath;
}

export const kidsOf = (jwks: Jwks) => jwks.keys.map((jwk) => jwk.kid);
