import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { describe, expect, it } from 'vitest';
import { EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE } from '../src/server/admin-cli.js';
import { secretDigest } from '../src/oauth/client-secrets.js';
import { basic, decodeToken, readyApp, temporaryDirectory } from './helpers.js';
import { runCli, seededDatabase, USAGE_HEADING } from './cli-helpers.js';

// 32 random bytes in base64url.
const CLIENT_SECRET = /^[A-Za-z0-9_-]{43}$/;
// A time as the CLI prints it: ISO 8601, UTC, to the second.
const AN_ISO_SECOND = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as string;

/** Registers `clientId` with `options` through the CLI (`--json`) and returns its secret. */
async function addClient(databasePath: string, clientId: string, options: readonly string[] = []): Promise<string> {
  const { code, stdout, stderr } = await runCli(['clients', 'add', clientId, ...options, '--json'], { DATABASE_URL: databasePath });
  expect({ code, stderr }).toEqual({ code: EXIT_OK, stderr: '' });
  return (JSON.parse(stdout) as { client_secret: string }).client_secret;
}

/** The server on the database the CLI works on. */
function serverOn(databasePath: string): Promise<FastifyInstance> {
  return readyApp({ databaseUrl: databasePath, rateLimit: false });
}

/** POST /oauth/token, `grant_type=client_credentials`, the client authenticated with HTTP Basic. */
function requestToken(app: FastifyInstance, clientId: string, clientSecret: string): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: { authorization: basic(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'grant_type=client_credentials',
  });
}

/** The access token the server issues for these credentials, asserting that it issues one. */
async function accessToken(app: FastifyInstance, clientId: string, clientSecret: string): Promise<string> {
  const response = await requestToken(app, clientId, clientSecret);
  expect(response.statusCode).toBe(200);
  const { access_token: token } = response.json<{ access_token: unknown }>();
  if (typeof token !== 'string') throw new Error(`no access_token in ${response.body}`);
  return token;
}

async function expectRefused(app: FastifyInstance, clientId: string, clientSecret: string): Promise<void> {
  const response = await requestToken(app, clientId, clientSecret);
  expect(response.statusCode).toBe(401);
  expect(response.json()).toMatchObject({ error: 'invalid_client' });
}

/** Every client as `clients list --json` prints it. */
async function listedClients(databasePath: string): Promise<Record<string, unknown>[]> {
  const { code, stdout } = await runCli(['clients', 'list', '--json'], { DATABASE_URL: databasePath });
  expect(code).toBe(EXIT_OK);
  return JSON.parse(stdout) as Record<string, unknown>[];
}

describe('clients add', () => {
  it('prints exactly {"client_id","client_secret"} with --json, a secret the token endpoint accepts', async () => {
    const databasePath = await seededDatabase();
    const app = await serverOn(databasePath);
    const { code, stdout, stderr } = await runCli(['clients', 'add', 'billing', '--json'], { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_OK);
    expect(stderr).toBe('');
    const printed = JSON.parse(stdout) as Record<string, unknown>;
    expect(Object.keys(printed)).toEqual(['client_id', 'client_secret']);
    expect(printed.client_id).toBe('billing');
    const secret = String(printed.client_secret);
    expect(secret).toMatch(CLIENT_SECRET);
    expect(stdout).toBe(JSON.stringify({ client_id: 'billing', client_secret: secret }));

    const { claims } = decodeToken(await accessToken(app, 'billing', secret));
    expect(claims).toMatchObject({ client_id: 'billing', sub: 'billing', aud: 'jwks-server' });
    await expectRefused(app, 'billing', secret.replace(/.$/, (last) => (last === 'A' ? 'B' : 'A')));
  });

  it('says the id and the secret, shown only this once, without --json; the client has the default settings', async () => {
    const databasePath = await seededDatabase();
    const { code, stdout, stderr } = await runCli(['clients', 'add', 'billing'], { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_OK);
    expect(stderr).toBe('');
    const [heading, secret, ...more] = stdout.split('\n');
    expect(heading).toBe('registered client billing; its secret, shown only this once:');
    expect(secret).toMatch(CLIENT_SECRET);
    expect(more).toEqual([]);
    const [client] = await listedClients(databasePath);
    expect(client).toEqual({
      clientId: 'billing',
      scopes: [],
      grantTypes: ['client_credentials'],
      audience: null,
      extraClaims: {},
      createdAt: AN_ISO_SECOND,
      disabledAt: null,
    });
    const app = await serverOn(databasePath);
    await accessToken(app, 'billing', String(secret));
  });

  it('takes scopes, grant types, an audience and extra claims, which list shows and the tokens carry', async () => {
    const databasePath = await seededDatabase();
    const options = ['--scope', 'read  write', '--grant-types', 'password client_credentials', '--audience', 'https://api.example.com', '--claims', '{"tenant":"acme"}'];
    const secret = await addClient(databasePath, 'reports', options);

    expect(await listedClients(databasePath)).toEqual([
      {
        clientId: 'reports',
        scopes: ['read', 'write'],
        grantTypes: ['client_credentials', 'password'],
        audience: 'https://api.example.com',
        extraClaims: { tenant: 'acme' },
        createdAt: AN_ISO_SECOND,
        disabledAt: null,
      },
    ]);
    const table = await runCli(['clients', 'list'], { DATABASE_URL: databasePath });
    const [header, row, ...more] = table.stdout.split('\n');
    expect(header?.split(/\s{2,}/)).toEqual(['CLIENT ID', 'SCOPES', 'GRANT TYPES', 'AUDIENCE', 'EXTRA CLAIMS', 'CREATED', 'REMOVED']);
    expect(row?.split(/\s{2,}/)).toEqual(['reports', 'read write', 'client_credentials password', 'https://api.example.com', '{"tenant":"acme"}', AN_ISO_SECOND, '-']);
    expect(more).toEqual([]);

    const app = await serverOn(databasePath);
    const { claims } = decodeToken(await accessToken(app, 'reports', secret));
    expect(claims).toMatchObject({ client_id: 'reports', aud: 'https://api.example.com', scope: 'read write', tenant: 'acme' });
  });

  it('refuses an id that is taken (exit 1), the id of a removed client too, keeping the first secret', async () => {
    const databasePath = await seededDatabase();
    const env = { DATABASE_URL: databasePath };
    const secret = await addClient(databasePath, 'billing');

    const again = await runCli(['clients', 'add', 'billing', '--json'], env);
    expect(again.code).toBe(EXIT_FAILED);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/^jwks-server: .*"billing" is taken/);

    expect((await runCli(['clients', 'remove', 'billing'], env)).code).toBe(EXIT_OK);
    const afterRemoval = await runCli(['clients', 'add', 'billing'], env);
    expect(afterRemoval).toMatchObject({ code: EXIT_FAILED, stdout: '' });
    expect(afterRemoval.stderr).toMatch(/is taken \(ids of removed clients are never reused\)/);
    expect(await listedClients(databasePath)).toEqual([expect.objectContaining({ clientId: 'billing', disabledAt: AN_ISO_SECOND })]);
    expect(again.stderr + afterRemoval.stderr).not.toContain(secret);
  });
});

describe('wrong usage of clients', () => {
  it.each([
    [['clients', 'add', 'bad id!'], /client id is 1 to 128 letters/],
    [['clients', 'add', 'billing', '--scope', 'read "write"'], /"\\"write\\"" is not a scope token/],
    [['clients', 'add', 'billing', '--claims', '{tenant: "acme"}'], /--claims takes a JSON object, got \{tenant: "acme"\}/],
    [['clients', 'add', 'billing', '--claims', '["acme"]'], /extra claims must be a JSON object/],
    [['clients', 'add', 'billing', '--claims', '{"iss":"me","sub":"you"}'], /must not set the registered claims iss, sub/],
    [['clients', 'add', 'billing', '--grant-types', 'client_credentials implicit'], /grant types are one or more of client_credentials, password/],
    [['clients', 'add', 'billing', '--grant-types', ' '], /grant types are one or more of/],
    [['clients', 'add', 'billing', '--audience', 'two words'], /an audience is a URI/],
    [['clients', 'add'], /add needs one client id/],
    [['clients', 'add', 'billing', 'read'], /add needs one client id/],
    [['clients', 'rotate-secret'], /rotate-secret needs one client id/],
    [['clients', 'remove', 'bad id!'], /client id is 1 to 128 letters/],
    [['clients', 'list', '--alg', 'RS256'], /clients commands take no --alg/],
    [['keys', 'list', '--scope', 'read'], /keys commands take no --scope/],
    [['clients', 'list', '--secret'], /Unknown option '--secret'/],
    [['clients'], /expected "keys", "clients" or "db", and a command/],
    [['users', 'list'], /expected "keys", "clients" or "db", and a command/],
    [['clients', 'frobnicate'], /unknown command "frobnicate"/],
    [['clients', 'constructor'], /unknown command "constructor"/],
  ])('exits 2 for %j before looking for the database', async (args, message) => {
    const databasePath = join(temporaryDirectory(), 'missing.db');
    const { code, stdout, stderr } = await runCli(args, { DATABASE_URL: databasePath });

    expect(code).toBe(EXIT_USAGE);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^jwks-server: /);
    expect(stderr).toMatch(message);
    expect(stderr).toContain(USAGE_HEADING);
    expect(existsSync(databasePath)).toBe(false);
  });

  it('prints the usage of every group with --help', async () => {
    const { code, stdout, stderr } = await runCli(['clients', '--help'], { DATABASE_URL: join(temporaryDirectory(), 'missing.db') });

    expect(code).toBe(EXIT_OK);
    expect(stderr).toBe('');
    expect(stdout.split('\n').slice(0, 3)).toEqual([USAGE_HEADING, '       jwks-server clients <command>', '       jwks-server db <command>']);
    for (const command of ['add <client_id>', 'list [--json]', 'rotate-secret <client_id>', 'remove <client_id>', 'backup <file>']) expect(stdout).toContain(`  ${command}`);
    expect(stdout).toMatch(/Every group reads DATABASE_URL/);
  });
});

describe('clients list', () => {
  it('lists every client, removed ones too, and never a secret or its digest', async () => {
    const databasePath = await seededDatabase();
    const env = { DATABASE_URL: databasePath };
    expect(await runCli(['clients', 'list'], env)).toEqual({ code: EXIT_OK, stdout: 'CLIENT ID  SCOPES  GRANT TYPES  AUDIENCE  EXTRA CLAIMS  CREATED  REMOVED', stderr: '' });
    expect(await runCli(['clients', 'list', '--json'], env)).toEqual({ code: EXIT_OK, stdout: '[]', stderr: '' });

    const secrets = [await addClient(databasePath, 'reports', ['--scope', 'read']), await addClient(databasePath, 'billing')];
    expect((await runCli(['clients', 'remove', 'reports'], env)).code).toBe(EXIT_OK);

    const listed = await runCli(['clients', 'list'], env);
    expect(listed.code).toBe(EXIT_OK);
    const rows = listed.stdout.split('\n').slice(1).map((row) => row.split(/\s{2,}/));
    expect(rows).toEqual([
      ['billing', '-', 'client_credentials', '-', '-', AN_ISO_SECOND, '-'],
      ['reports', 'read', 'client_credentials', '-', '-', AN_ISO_SECOND, AN_ISO_SECOND],
    ]);
    const json = await runCli(['clients', 'list', '--json'], env);
    expect((JSON.parse(json.stdout) as { clientId: string; disabledAt: string | null }[]).map(({ clientId, disabledAt }) => [clientId, disabledAt === null])).toEqual([
      ['billing', true],
      ['reports', false],
    ]);
    for (const printed of [listed.stdout, json.stdout]) {
      for (const secret of secrets) {
        const digest = secretDigest(secret);
        for (const text of [secret, digest.toString('hex'), digest.toString('base64'), digest.toString('base64url')]) expect(printed).not.toContain(text);
      }
      expect(printed).not.toMatch(/secret|digest/i);
    }
  });
});

describe('clients rotate-secret', () => {
  it('prints a new secret the token endpoint accepts at once, refusing the old one from then on', async () => {
    const databasePath = await seededDatabase();
    const env = { DATABASE_URL: databasePath };
    const app = await serverOn(databasePath);
    const first = await addClient(databasePath, 'billing', ['--scope', 'read']);
    await accessToken(app, 'billing', first);

    const rotated = await runCli(['clients', 'rotate-secret', 'billing', '--json'], env);
    expect(rotated.code).toBe(EXIT_OK);
    expect(rotated.stderr).toBe('');
    const printed = JSON.parse(rotated.stdout) as Record<string, unknown>;
    expect(Object.keys(printed)).toEqual(['client_id', 'client_secret']);
    const second = String(printed.client_secret);
    expect(second).toMatch(CLIENT_SECRET);
    expect(rotated.stdout).toBe(JSON.stringify({ client_id: 'billing', client_secret: second }));
    expect(second).not.toBe(first);
    await expectRefused(app, 'billing', first);
    expect(decodeToken(await accessToken(app, 'billing', second)).claims).toMatchObject({ client_id: 'billing', scope: 'read' });

    const again = await runCli(['clients', 'rotate-secret', 'billing'], env);
    expect(again.code).toBe(EXIT_OK);
    const [heading, third, ...more] = again.stdout.split('\n');
    expect(heading).toBe('rotated the secret of client billing (the old one no longer works); the new one, shown only this once:');
    expect(third).toMatch(CLIENT_SECRET);
    expect(more).toEqual([]);
    await expectRefused(app, 'billing', second);
    await accessToken(app, 'billing', String(third));
    expect(await listedClients(databasePath)).toEqual([expect.objectContaining({ clientId: 'billing', scopes: ['read'], disabledAt: null })]);
  });

  it.each([
    ['unknown', []],
    ['removed', ['billing']],
  ])('exits 3 for a client that is %s', async (_description, removed) => {
    const databasePath = await seededDatabase();
    const env = { DATABASE_URL: databasePath };
    await addClient(databasePath, 'billing');
    for (const clientId of removed) expect((await runCli(['clients', 'remove', clientId], env)).code).toBe(EXIT_OK);
    const clientId = removed.length === 0 ? 'nobody' : 'billing';

    expect(await runCli(['clients', 'rotate-secret', clientId, '--json'], env)).toEqual({ code: EXIT_NOT_FOUND, stdout: '', stderr: `jwks-server: there is no client ${clientId}` });
  });
});

describe('clients remove', () => {
  it('disables the client, which can no longer get a token, and says it already was when asked again', async () => {
    const databasePath = await seededDatabase();
    const env = { DATABASE_URL: databasePath };
    const app = await serverOn(databasePath);
    const secret = await addClient(databasePath, 'billing');
    await accessToken(app, 'billing', secret);

    expect(await runCli(['clients', 'remove', 'billing'], env)).toEqual({ code: EXIT_OK, stdout: 'removed client billing', stderr: '' });
    await expectRefused(app, 'billing', secret);
    expect(await runCli(['clients', 'remove', 'billing'], env)).toEqual({ code: EXIT_OK, stdout: 'client billing was already removed', stderr: '' });
    await expectRefused(app, 'billing', secret);
  });

  it('exits 3 for a client that does not exist', async () => {
    const databasePath = await seededDatabase();
    expect(await runCli(['clients', 'remove', 'nobody'], { DATABASE_URL: databasePath })).toEqual({ code: EXIT_NOT_FOUND, stdout: '', stderr: 'jwks-server: there is no client nobody' });
    expect(await listedClients(databasePath)).toEqual([]);
  });
});
