import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, main } from '../src/server/admin-cli.js';
import type { SigningAlgorithm } from '../src/keys/algorithms.js';
import { systemClock } from '../src/common/clock.js';
import { openDatabase } from '../src/database/connection.js';
import { prepareKeyCipher } from '../src/keys/key-cipher.js';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { keyState, type KeyMetadata, type RotationPolicy } from '../src/keys/key-lifecycle.js';
import { createKeyStore } from '../src/keys/key-store.js';
import type { Jwks } from '../src/keys/keyring.js';
import { insertCourseKey, openTestDatabase, PRIVATE_JWK_MEMBERS, readyApp, serverEnvironment, storedKeys, temporaryDirectory } from './helpers.js';

const CLI_ENTRY = fileURLToPath(new URL('../dist/src/server/cli.js', import.meta.url));

// The schedule the CLI uses when KEY_TTL, TOKEN_TTL and JWKS_MAX_AGE are unset.
const DEFAULT_POLICY: RotationPolicy = { keyTtlSeconds: 3600, tokenTtlSeconds: 900, leadSeconds: 300 };
const SECRET = 'correct horse battery staple';
const DAY = 24 * 3600;
const USAGE_HEADING = 'Usage: jwks-server keys <command>';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with only `env` as its environment, capturing what it prints. */
async function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
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

// Seeding generates keys, the slow part: each kind of database is seeded once and copied for every test.
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
async function seededDatabase(options: SeedOptions = {}): Promise<string> {
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

function byKid(keys: readonly KeyMetadata[], kid: number): KeyMetadata {
  const key = keys.find((candidate) => candidate.kid === kid);
  if (key === undefined) throw new Error(`no key ${String(kid)}`);
  return key;
}

/** The CLI's time format: ISO 8601 to the second. */
function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

async function servedJwks(app: FastifyInstance): Promise<Jwks> {
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  expect(response.statusCode).toBe(200);
  return response.json<Jwks>();
}

const kidsOf = (jwks: Jwks) => jwks.keys.map((jwk) => jwk.kid);

/** Polls the running app's JWKS (at most 3 s, every 50 ms) until `check` stops throwing. */
async function waitForServedJwks(app: FastifyInstance, check: (jwks: Jwks) => void): Promise<Jwks> {
  return vi.waitFor(
    async () => {
      const jwks = await servedJwks(app);
      check(jwks);
      return jwks;
    },
    { timeout: 3000, interval: 50 },
  );
}

describe('keys list', () => {
  it('prints a header line and one line per key with its kid, algorithm, state and schedule', async () => {
    const databasePath = await seededDatabase({ algorithms: ['RS256', 'ES256'] });
    const { code, stdout, stderr } = await runCli(['keys', 'list'], { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_OK);
    expect(stderr).toBe('');
    const [header, ...rows] = stdout.split('\n');
    expect(header?.split(/\s{2,}/)).toEqual(['KID', 'ALG', 'STATE', 'PUBLISHED', 'SIGNS FROM', 'SIGNS UNTIL', 'EXPIRES']);
    const cells = rows.map((row) => row.split(/\s+/));
    expect(cells.map(([kid, alg, state]) => [kid, alg, state])).toEqual([
      ['1', 'RS256', 'active'],
      ['2', 'RS256', 'published'],
      ['3', 'RS256', 'expired'],
      ['4', 'ES256', 'active'],
      ['5', 'ES256', 'published'],
      ['6', 'ES256', 'expired'],
    ]);
    const keys = await storedKeys(databasePath);
    expect(cells.map((row) => row.slice(3))).toEqual(keys.map((key) => [key.publishedAt, key.activatesAt, key.retiresAt, key.exp].map(iso)));
  });

  it('prints every key as JSON with --json, and never any private key material', async () => {
    const databasePath = await seededDatabase();
    const { code, stdout, stderr } = await runCli(['keys', 'list', '--json'], { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_OK);
    expect(stderr).toBe('');
    const now = systemClock();
    const expected = (await storedKeys(databasePath)).map((key) => ({ ...key, state: keyState(key, now) }));
    const listed = JSON.parse(stdout) as unknown[];
    expect(listed).toEqual(expected);
    expect(listed.map((key) => Object.keys(key as object).sort())).toEqual(
      Array(3).fill(['activatesAt', 'alg', 'exp', 'kid', 'publishedAt', 'retiresAt', 'revokedAt', 'state']),
    );
    expect(expected.map(({ state }) => state)).toEqual(['active', 'published', 'expired']);
    const table = await runCli(['keys', 'list'], { DATABASE_URL: databasePath });
    for (const text of [stdout, table.stdout]) expect(text).not.toMatch(/PRIVATE KEY|[A-Za-z0-9+/=]{40,}/);
  });
});

describe('keys rotate', () => {
  it('publishes a new key per configured algorithm that signs JWKS_MAX_AGE seconds from now, ahead of the waiting successor', async () => {
    const databasePath = await seededDatabase({ algorithms: ['RS256', 'ES256'] });
    const before = systemClock();
    const { code, stdout, stderr } = await runCli(['keys', 'rotate'], { DATABASE_URL: databasePath, ALGORITHMS: 'RS256,ES256', JWKS_MAX_AGE: '120' });
    const after = systemClock();

    expect(code).toBe(EXIT_OK);
    expect(stderr).toBe('');
    const keys = await storedKeys(databasePath);
    expect(keys).toHaveLength(8);
    const lines = stdout.split('\n');
    // Seeded kids: RS256 1 (active), 2 (waiting), 3 (expired); ES256 4, 5, 6.
    for (const [index, [alg, newKid, activeKid, waitingKid]] of ([['RS256', 7, 1, 2], ['ES256', 8, 4, 5]] as const).entries()) {
      const rotated = byKid(keys, newKid);
      expect(lines[index]).toBe(`${alg}: published key ${String(newKid)}, signing from ${iso(rotated.activatesAt)}`);
      expect(rotated.alg).toBe(alg);
      expect(rotated.publishedAt).toBeGreaterThanOrEqual(before);
      expect(rotated.publishedAt).toBeLessThanOrEqual(after);
      expect(rotated).toMatchObject({
        activatesAt: rotated.publishedAt + 120,
        retiresAt: rotated.publishedAt + 120 + 3600,
        exp: rotated.publishedAt + 120 + 3600 + 900,
        revokedAt: null,
      });
      expect(keyState(rotated, after)).toBe('published');
      // The active key hands over to the new one, and the successor already waiting queues up behind it.
      expect(byKid(keys, activeKid)).toMatchObject({ retiresAt: rotated.activatesAt, exp: rotated.activatesAt + 900 });
      expect(keyState(byKid(keys, activeKid), after)).toBe('active');
      expect(byKid(keys, waitingKid).activatesAt).toBe(rotated.retiresAt);
    }
    expect(lines).toHaveLength(2);
  });

  it('makes the new key sign at once with --now, retiring the active key', async () => {
    const databasePath = await seededDatabase();
    const before = systemClock();
    const { code, stdout } = await runCli(['keys', 'rotate', '--now'], { DATABASE_URL: databasePath });
    const after = systemClock();

    expect(code).toBe(EXIT_OK);
    const keys = await storedKeys(databasePath);
    const rotated = byKid(keys, 4);
    expect(stdout).toBe(`RS256: published key 4, signing from ${iso(rotated.activatesAt)}`);
    expect(rotated.activatesAt).toBeGreaterThanOrEqual(before);
    expect(rotated.activatesAt).toBeLessThanOrEqual(after);
    expect(rotated.activatesAt).toBe(rotated.publishedAt);
    expect(keyState(rotated, after)).toBe('active');
    expect(byKid(keys, 1).retiresAt).toBe(rotated.activatesAt);
    expect(keyState(byKid(keys, 1), after)).toBe('retired');
    expect(byKid(keys, 2).activatesAt).toBe(rotated.retiresAt);
  });

  it('rotates only the algorithm named by --alg', async () => {
    const databasePath = await seededDatabase({ algorithms: ['RS256', 'ES256'] });
    const { code, stdout } = await runCli(['keys', 'rotate', '--alg', 'ES256'], { DATABASE_URL: databasePath, ALGORITHMS: 'RS256,ES256' });

    expect(code).toBe(EXIT_OK);
    expect(stdout).toMatch(/^ES256: published key 7, signing from \S+$/);
    const keys = await storedKeys(databasePath);
    expect(keys.map(({ kid, alg }) => [kid, alg])).toEqual([
      [1, 'RS256'],
      [2, 'RS256'],
      [3, 'RS256'],
      [4, 'ES256'],
      [5, 'ES256'],
      [6, 'ES256'],
      [7, 'ES256'],
    ]);
  });

  it('refuses an algorithm it cannot sign with as wrong usage (exit 2), adding no key', async () => {
    const databasePath = await seededDatabase();
    const { code, stdout, stderr } = await runCli(['keys', 'rotate', '--alg', 'HS256'], { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_USAGE);
    expect(stdout).toBe('');
    expect(stderr).toContain('"HS256"');
    expect(stderr).toContain(USAGE_HEADING);
    expect(await storedKeys(databasePath)).toHaveLength(3);
  });
});

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

describe('keys revoke', () => {
  it('revokes a key, and says it already was when asked again', async () => {
    const databasePath = await seededDatabase();
    const env = { DATABASE_URL: databasePath };
    const before = systemClock();
    const first = await runCli(['keys', 'revoke', '1'], env);
    const after = systemClock();

    expect(first).toEqual({ code: EXIT_OK, stdout: 'revoked key 1', stderr: '' });
    const revokedAt = byKid(await storedKeys(databasePath), 1).revokedAt;
    expect(revokedAt).toBeGreaterThanOrEqual(before);
    expect(revokedAt).toBeLessThanOrEqual(after);

    const again = await runCli(['keys', 'revoke', '1'], env);
    expect(again).toEqual({ code: EXIT_OK, stdout: 'key 1 was already revoked', stderr: '' });
    const keys = await storedKeys(databasePath);
    expect(keys.map((key) => [key.kid, key.revokedAt])).toEqual([
      [1, revokedAt],
      [2, null],
      [3, null],
    ]);
    const listed = JSON.parse((await runCli(['keys', 'list', '--json'], env)).stdout) as { kid: number; state: string }[];
    expect(listed.find(({ kid }) => kid === 1)?.state).toBe('revoked');
  });

  it('exits 3 with a message on stderr for a kid that does not exist', async () => {
    const databasePath = await seededDatabase();
    const { code, stdout, stderr } = await runCli(['keys', 'revoke', '99'], { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_NOT_FOUND);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/no key 99/);
    expect((await storedKeys(databasePath)).every((key) => key.revokedAt === null)).toBe(true);
  });

  it.each([[['keys', 'revoke']], [['keys', 'revoke', 'abc']], [['keys', 'revoke', '0']], [['keys', 'revoke', '1.5']]])(
    'exits 2 with the usage on stderr for %j',
    async (args) => {
      const databasePath = await seededDatabase();
      const { code, stdout, stderr } = await runCli(args, { DATABASE_URL: databasePath });

      expect(code).toBe(EXIT_USAGE);
      expect(stdout).toBe('');
      expect(stderr).toMatch(/kid/);
      expect(stderr).toContain(USAGE_HEADING);
      expect((await storedKeys(databasePath)).every((key) => key.revokedAt === null)).toBe(true);
    },
  );
});

describe('keys prune', () => {
  it('deletes keys expired or revoked longer than EXPIRED_KEY_RETENTION ago, but keeps the latest expired key', async () => {
    const databasePath = await seededDatabase();
    const db = await openTestDatabase(databasePath);
    const pem = await generatePrivateKeyPem('RS256');
    const now = systemClock();
    // Keys a course server wrote long ago, adopted (as kids 4 and 5) by the next maintenance.
    await insertCourseKey(db, pem, now - 30 * DAY);
    await insertCourseKey(db, pem, now - 20 * DAY);
    expect((await createKeyStore(db).maintain(now, ['RS256'], DEFAULT_POLICY)).adopted).toEqual([4, 5]);
    expect((await runCli(['keys', 'revoke', '2'], { DATABASE_URL: databasePath })).code).toBe(EXIT_OK);

    const kept = await runCli(['keys', 'prune'], { DATABASE_URL: databasePath, EXPIRED_KEY_RETENTION: String(31 * DAY) });
    expect(kept).toEqual({ code: EXIT_OK, stdout: 'nothing to prune', stderr: '' });
    expect((await storedKeys(databasePath)).map(({ kid }) => kid)).toEqual([1, 2, 3, 4, 5]);

    const env = { DATABASE_URL: databasePath, EXPIRED_KEY_RETENTION: '0' };
    const pruned = await runCli(['keys', 'prune'], env);
    expect(pruned.code).toBe(EXIT_OK);
    const prunedKids = /^pruned 3 keys: (.+)$/.exec(pruned.stdout)?.[1]?.split(', ');
    expect(prunedKids?.sort()).toEqual(['2', '4', '5']);
    // Key 3 expired last: POST /auth?expired=true still signs with it.
    expect((await storedKeys(databasePath)).map(({ kid }) => kid)).toEqual([1, 3]);

    expect(await runCli(['keys', 'prune'], env)).toEqual({ code: EXIT_OK, stdout: 'nothing to prune', stderr: '' });
  });
});

describe('keys export-jwks', () => {
  it('prints exactly the JWKS the running server serves, with public members only', async () => {
    const databasePath = join(temporaryDirectory(), 'keys.db');
    const app = await readyApp({ databaseUrl: databasePath, rateLimit: false, algorithms: ['RS256', 'ES256', 'EdDSA'] });
    const { code, stdout, stderr } = await runCli(['keys', 'export-jwks'], { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_OK);
    expect(stderr).toBe('');
    const exported = JSON.parse(stdout) as Jwks;
    expect(exported).toEqual(await servedJwks(app));
    expect(kidsOf(exported)).toEqual(['1', '2', '4', '5', '7', '8']);
    for (const jwk of exported.keys) {
      for (const member of PRIVATE_JWK_MEMBERS) expect(jwk).not.toHaveProperty(member);
    }
    expect(stdout).not.toMatch(/PRIVATE/);
  });
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

describe('a running server on the same database', () => {
  it('stops publishing and signing with a key the CLI revokes, within a few sync intervals', async () => {
    const databasePath = join(temporaryDirectory(), 'keys.db');
    const app = await readyApp({ databaseUrl: databasePath, rateLimit: false, keySyncIntervalMs: 50 });
    const revokedKid = (await app.keyring.current()).signingKey('RS256').kid;
    expect(kidsOf(await servedJwks(app))).toContain(revokedKid);

    // The CLI opens its own connection, as another process would.
    expect(await runCli(['keys', 'revoke', revokedKid], { DATABASE_URL: databasePath })).toMatchObject({ code: EXIT_OK, stdout: `revoked key ${revokedKid}` });
    const jwks = await waitForServedJwks(app, (served) => {
      expect(kidsOf(served)).not.toContain(revokedKid);
    });

    const response = await app.inject({ method: 'POST', url: '/auth' });
    expect(response.statusCode).toBe(200);
    const { token } = response.json<{ token: string }>();
    expect(decodeProtectedHeader(token).kid).not.toBe(revokedKid);
    const { protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks));
    expect(kidsOf(jwks)).toContain(protectedHeader.kid);
  });

  it('publishes a key the CLI rotates in, within a few sync intervals', async () => {
    const databasePath = join(temporaryDirectory(), 'keys.db');
    const app = await readyApp({ databaseUrl: databasePath, rateLimit: false, keySyncIntervalMs: 50 });
    const signingKid = (await app.keyring.current()).signingKey('RS256').kid;

    const { code, stdout } = await runCli(['keys', 'rotate'], { DATABASE_URL: databasePath });
    expect(code).toBe(EXIT_OK);
    const rotatedKid = /^RS256: published key (\d+),/.exec(stdout)?.[1];
    expect(rotatedKid).toBeDefined();

    await waitForServedJwks(app, (served) => {
      expect(kidsOf(served)).toContain(rotatedKid);
    });
    // Published ahead of signing: tokens still come from the key that was active.
    expect((await app.keyring.current()).signingKey('RS256').kid).toBe(signingKid);
  });
});
