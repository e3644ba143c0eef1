import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';

const REPOSITORY = fileURLToPath(new URL('..', import.meta.url));

// What the README shows a host app doing, compiled against the built declarations only (dist/),
// as a package consumer sees them: the decorators must be typed there, not just inside this repo.
const CONSUMER = `
import Fastify from 'fastify';
import { jwksService, type JwksServiceOptions } from '../../../dist/src/index.js';

const options: JwksServiceOptions = {
  databaseUrl: ':memory:',
  authMode: 'strict',
  rateLimit: false,
  oauth: { clients: [{ clientId: 'billing', clientSecret: 'a'.repeat(43), scopes: ['invoices:read'] }], passwordGrant: false },
};
const app = Fastify();
await app.register(jwksService, options);
const token: string = await app.signer.issueToken({ subject: 'alice' });
const claims = await app.tokenVerifier.verify(token);
const kids: string[] = (await app.keyring.current()).jwks.keys.map((jwk) => jwk.kid);
const user = await app.userStore.findByUsername('alice');
await app.keyStore.listKeys();
const metricsText: string = await app.metrics.registry.metrics();
const secret: string = await app.clientStore.add('reports', { scopes: ['reports:read'] });
const access = await app.signer.issueAccessToken({ clientId: 'reports', subject: 'reports', scopes: ['reports:read'] });
const introspection = await app.oauthServer.introspect(access.token);
export { claims, kids, user, metricsText, secret, introspection };
`;

describe('the published type declarations', () => {
  it('type the decorators for an app that imports the package', () => {
    const cache = join(REPOSITORY, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    // Inside node_modules/.cache so that the consumer resolves 'fastify' like a dependent package.
    const directory = mkdtempSync(join(cache, 'consumer-'));
    onTestFinished(() => {
      rmSync(directory, { recursive: true, force: true });
    });
    writeFileSync(join(directory, 'consumer.ts'), CONSUMER);
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const compilation = spawnSync(
      process.execPath,
      [tsc, '--ignoreConfig', '--noEmit', '--strict', '--exactOptionalPropertyTypes', '--skipLibCheck', '--module', 'nodenext', '--target', 'es2022', '--types', 'node', 'consumer.ts'],
      { cwd: directory, encoding: 'utf8' },
    );
    expect(compilation.stdout + compilation.stderr).toBe('');
    expect(compilation.status).toBe(0);
  });
});
