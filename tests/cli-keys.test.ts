import { describe, expect, it } from 'vitest';
import { EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE } from '../src/server/admin-cli.js';
import { systemClock } from '../src/common/clock.js';
import { generatePrivateKeyPem } from '../src/keys/key-generation.js';
import { keyState, type KeyMetadata } from '../src/keys/key-lifecycle.js';
import { createKeyStore } from '../src/keys/key-store.js';
import { insertCourseKey, openTestDatabase, storedKeys } from './helpers.js';
import { DEFAULT_POLICY, runCli, seededDatabase, USAGE_HEADING } from './cli-helpers.js';

const DAY = 24 * 3600;

function byKid(keys: readonly KeyMetadata[], kid: number): KeyMetadata {
  const key = keys.find((candidate) => candidate.kid === kid);
  if (key === undefined) throw new Error(`no key ${String(kid)}`);
  return key;
}

/** The CLI's time format: ISO 8601 to the second. */
function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
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
