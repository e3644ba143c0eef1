import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE } from '../src/server/admin-cli.js';
import type { Jwks } from '../src/keys/keyring.js';
import { openTestDatabase, serverEnvironment, storedKeys, temporaryDirectory } from './helpers.js';
import { kidsOf, runCli, seededDatabase, USAGE_HEADING, type CliResult } from './cli-helpers.js';

const CLI_ENTRY = fileURLToPath(new URL('../dist/src/server/cli.js', import.meta.url));
const SECRET = 'correct horse battery staple';

/** Runs the built bin, `node dist/src/server/cli.js`, with the CLI's variables cleared but for `variables`. */
async function spawnCli(args: readonly string[], variables: Record<string, string>): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], { env: serverEnvironment(variables), stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

describe('keys rotate and revoke check their arguments first', () => {
  it('refuses --alg for an algorithm missing from ALGORITHMS, whose key would never sign', async () => {
    const databasePath = await seededDatabase();
    const { code, stderr } = await runCli(['keys', 'rotate', '--alg', 'ES256'], { DATABASE_URL: databasePath });
    expect(code).toBe(EXIT_USAGE);
    expect(stderr).toContain('--alg must be one of ALGORITHMS (RS256), got "ES256"');
    expect(await storedKeys(databasePath)).toHaveLength(3);
  });

  it.each([[['keys', 'revoke', 'abc']], [['keys', 'revoke', '9007199254740993']], [['keys', 'rotate', '--alg', 'HS256']]])(
    'tells wrong usage (exit 2) for %j before looking for the database',
    async (args) => {
      const databasePath = join(temporaryDirectory(), 'missing.db');
      const { code, stderr } = await runCli(args, { DATABASE_URL: databasePath });
      expect(code).toBe(EXIT_USAGE);
      expect(stderr).toContain(USAGE_HEADING);
      expect(existsSync(databasePath)).toBe(false);
    },
  );
});

describe('with private keys encrypted at rest (NOT_MY_KEY)', () => {
  it('rotates and exports with the right secret, sealing the new key', async () => {
    const databasePath = await seededDatabase({ secret: SECRET });
    const env = { DATABASE_URL: databasePath, NOT_MY_KEY: SECRET };

    const rotated = await runCli(['keys', 'rotate'], env);
    expect(rotated.code).toBe(EXIT_OK);
    expect(rotated.stdout).toMatch(/^RS256: published key 4, /);
    const db = await openTestDatabase(databasePath);
    const stored = await db.selectFrom('keys').select('key').where('kid', '=', 4).executeTakeFirstOrThrow();
    expect(Buffer.from(stored.key).toString('latin1')).not.toContain('-----BEGIN');

    const exported = await runCli(['keys', 'export-jwks'], env);
    expect(exported.code).toBe(EXIT_OK);
    expect(kidsOf(JSON.parse(exported.stdout) as Jwks)).toEqual(['1', '2', '4']);
  });

  it.each([
    ['rotate', 'a wrong', 'not the secret'],
    ['rotate', 'no', undefined],
    ['export-jwks', 'a wrong', 'not the secret'],
    ['export-jwks', 'no', undefined],
  ])('%s fails (exit 1) naming NOT_MY_KEY with %s secret, adding no key', async (command, _description, secret) => {
    const databasePath = await seededDatabase({ secret: SECRET });
    const env = secret === undefined ? { DATABASE_URL: databasePath } : { DATABASE_URL: databasePath, NOT_MY_KEY: secret };
    const { code, stdout, stderr } = await runCli(['keys', command], env);

    expect(code).toBe(EXIT_FAILED);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^jwks-server: .*NOT_MY_KEY/);
    expect(await storedKeys(databasePath)).toHaveLength(3);
  });
});

describe('errors and usage', () => {
  it('exits 1 when DATABASE_URL names no file, and does not create it', async () => {
    const directory = temporaryDirectory();
    const databasePath = join(directory, 'missing.db');
    const { code, stdout, stderr } = await runCli(['keys', 'list'], { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_FAILED);
    expect(stdout).toBe('');
    expect(stderr).toContain(databasePath);
    expect(existsSync(databasePath)).toBe(false);
    expect(readdirSync(directory)).toEqual([]);
  });

  it.each([[[]], [['keys']], [['list']], [['keys', 'frobnicate']], [['keys', 'list', '--verbose']]])('exits 2 with the usage on stderr for %j', async (args) => {
    const databasePath = await seededDatabase();
    const { code, stdout, stderr } = await runCli(args, { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_USAGE);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^jwks-server: /);
    expect(stderr).toContain(USAGE_HEADING);
  });

  it.each([[['--help']], [['keys', 'rotate', '-h']]])('prints the usage on stdout and exits 0 for %j, touching no database', async (args) => {
    const databasePath = join(temporaryDirectory(), 'missing.db');
    const { code, stdout, stderr } = await runCli(args, { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_OK);
    expect(stderr).toBe('');
    expect(stdout.startsWith(USAGE_HEADING)).toBe(true);
    for (const command of ['list', 'rotate', 'revoke', 'prune', 'export-jwks']) expect(stdout).toContain(`  ${command} `);
    expect(existsSync(databasePath)).toBe(false);
  });

  it.each([
    ['KEY_TTL', 'abc'],
    ['JWKS_MAX_AGE', String(2 * 3600)],
    ['EXPIRED_KEY_RETENTION', '-1'],
    ['ALGORITHMS', 'RS256,HS256'],
    ['DATABASE_URL', 'mysql://localhost/keys'],
  ])('exits 1 naming %s when it is invalid (%s)', async (variable, value) => {
    const databasePath = await seededDatabase();
    const { code, stdout, stderr } = await runCli(['keys', 'list'], { DATABASE_URL: databasePath, [variable]: value });

    expect(code).toBe(EXIT_FAILED);
    expect(stdout).toBe('');
    expect(stderr).toMatch(new RegExp(`^jwks-server: invalid configuration: ${variable} `));
  });
});

describe('the built bin, node dist/src/server/cli.js', () => {
  it('lists the keys as JSON and exits 0', async () => {
    const databasePath = await seededDatabase();
    const { code, stdout, stderr } = await spawnCli(['keys', 'list', '--json'], { DATABASE_URL: databasePath });

    expect(stderr).toBe('');
    expect(code).toBe(EXIT_OK);
    const listed = JSON.parse(stdout) as { kid: number; alg: string; state: string }[];
    expect(listed.map(({ kid, alg, state }) => [kid, alg, state])).toEqual([
      [1, 'RS256', 'active'],
      [2, 'RS256', 'published'],
      [3, 'RS256', 'expired'],
    ]);
  });

  it('exits 3 for a kid that does not exist', async () => {
    const databasePath = await seededDatabase();
    const { code, stdout, stderr } = await spawnCli(['keys', 'revoke', '42'], { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_NOT_FOUND);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/no key 42/);
  });
});
