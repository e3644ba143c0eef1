import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { EXIT_OK } from '../src/server/admin-cli.js';
import type { Jwks } from '../src/keys/keyring.js';
import { PRIVATE_JWK_MEMBERS, readyApp, temporaryDirectory } from './helpers.js';
import { kidsOf, runCli } from './cli-helpers.js';

async function servedJwks(app: FastifyInstance): Promise<Jwks> {
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  expect(response.statusCode).toBe(200);
  return response.json<Jwks>();
}

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
