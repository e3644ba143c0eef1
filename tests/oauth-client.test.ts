/**
 * The OAuth endpoints as a real OAuth client (openid-client) uses them, against the built server
 * process: discovery, the client credentials and password grants, errors, introspection and
 * revocation, and a revocation seen by a second server process on the same database.
 */
import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ClientSettings } from '../src/oauth/clients.js';
import { createClientStore } from '../src/oauth/client-store.js';
import { freePort } from './free-port.js';
import { cleanupAfterAll, newTestDatabase, readDatabase } from './helpers.js';
import { startServer, type RunningServer } from './server-process.js';

interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

type ClientAuthentication = typeof client.ClientSecretBasic;

const API_AUDIENCE = 'https://api.example.com';

// The servers under test answer plain HTTP on loopback. openid-client marks the opt-in deprecated
// only to make it stand out.
// eslint-disable-next-line @typescript-eslint/no-deprecated
const allowPlainHttp: (config: client.Configuration) => void = client.allowInsecureRequests;

/** What `promise` rejected with; fails when it resolves. */
async function refusalOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a refusal, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

async function registerUser(baseUrl: string, username: string): Promise<string> {
  const response = await fetch(`${baseUrl}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, email: `${username}@example.com` }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { password: string }).password;
}

function getProfile(baseUrl: string, accessToken: string): Promise<Response> {
  return fetch(`${baseUrl}/users/me`, { headers: { authorization: `Bearer ${accessToken}` } });
}

describe('openid-client against the standalone server', () => {
  const untilAllTestsEnd = cleanupAfterAll();
  let databaseUrl = '';
  let issuer = '';
  let secondServer: RunningServer;

  beforeAll(async () => {
    databaseUrl = await newTestDatabase(untilAllTestsEnd);
    const variables = { DATABASE_URL: databaseUrl, OAUTH_PASSWORD_GRANT: 'true', RATE_LIMIT_MAX: '0' };
    // openid-client requires discovery's issuer to be the URL it discovered from, so the first
    // server is told its port (and its issuer) before it starts. Another process of a busy
    // machine may take a free port first (an outgoing connection's, say): then another port.
    const startFirst = async (attemptsLeft: number): Promise<void> => {
      const port = await freePort();
      issuer = `http://127.0.0.1:${String(port)}`;
      try {
        await startServer({ ...variables, ISSUER: issuer, PORT: String(port) }, { registerCleanup: untilAllTestsEnd });
      } catch (error) {
        if (attemptsLeft === 0 || !String(error).includes('already in use')) throw error;
        await startFirst(attemptsLeft - 1);
      }
    };
    // The second server's issuer is the first's: both are one issuer, as instances behind one address are.
    await startFirst(2);
    secondServer = await startServer({ ...variables, ISSUER: issuer }, { registerCleanup: untilAllTestsEnd });
  });

  /** Registers a client in the servers' database, as the admin CLI does from another process. */
  async function registerClient(settings: ClientSettings): Promise<ClientCredentials> {
    const clientId = `client-${randomUUID()}`;
    const clientSecret = await readDatabase(databaseUrl, (db) => createClientStore(db).add(clientId, settings));
    return { clientId, clientSecret };
  }

  /** Discovery from the issuer's OpenID Connect well-known URL (`oidc`), or RFC 8414's (`oauth2`). */
  function discover(
    { clientId, clientSecret }: ClientCredentials,
    authentication: ClientAuthentication = client.ClientSecretBasic,
    algorithm: 'oidc' | 'oauth2' = 'oidc',
  ): Promise<client.Configuration> {
    return client.discovery(new URL(issuer), clientId, undefined, authentication(clientSecret), { algorithm, execute: [allowPlainHttp] });
  }

  it('discovers the issuer, and finds the token, introspection and revocation endpoints and the JWKS there', async () => {
    const credentials = await registerClient({});
    const config = await discover(credentials);

    const ours = {
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      token_endpoint: `${issuer}/oauth/token`,
      introspection_endpoint: `${issuer}/oauth/introspect`,
      revocation_endpoint: `${issuer}/oauth/revoke`,
      grant_types_supported: ['client_credentials', 'password'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    };
    expect(config.serverMetadata()).toMatchObject(ours);
    expect((await discover(credentials, client.ClientSecretBasic, 'oauth2')).serverMetadata()).toMatchObject(ours);
  });

  it.each([
    ['client_secret_basic', client.ClientSecretBasic],
    ['client_secret_post', client.ClientSecretPost],
  ])('issues RFC 9068 access tokens by the client credentials grant to a client authenticated by %s', async (_method, authentication) => {
    const credentials = await registerClient({ scopes: ['read', 'write'], audience: API_AUDIENCE });
    const config = await discover(credentials, authentication);

    const everything = await client.clientCredentialsGrant(config);
    expect(everything).toMatchObject({ token_type: 'bearer', scope: 'read write' });
    const narrowed = await client.clientCredentialsGrant(config, { scope: 'read' });
    expect(narrowed).toMatchObject({ token_type: 'bearer', scope: 'read' });

    const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(narrowed.access_token, jwks, { typ: 'at+jwt', issuer, audience: API_AUDIENCE });
    expect(payload).toMatchObject({ sub: credentials.clientId, client_id: credentials.clientId, scope: 'read', aud: API_AUDIENCE });
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(narrowed.expires_in);
    const { payload: everythingPayload } = await jwtVerify(everything.access_token, jwks, { typ: 'at+jwt', issuer, audience: API_AUDIENCE });
    expect(everythingPayload.scope).toBe('read write');
    expect(everythingPayload.jti).not.toBe(payload.jti);
  });

  it('refuses a scope beyond the client\'s with invalid_scope', async () => {
    const config = await discover(await registerClient({ scopes: ['read'] }));

    const refusal = await refusalOf(client.clientCredentialsGrant(config, { scope: 'read admin' }));
    expect(refusal).toBeInstanceOf(client.ResponseBodyError);
    expect(refusal).toMatchObject({ status: 400, error: 'invalid_scope' });
  });

  it('refuses a wrong client secret with invalid_client, and a Basic challenge when Basic was used', async () => {
    const credentials = { ...(await registerClient({})), clientSecret: 'not-the-secret' };

    // openid-client reports a 401 with a WWW-Authenticate challenge by the challenge, not the body.
    const basicRefusal = await refusalOf(client.clientCredentialsGrant(await discover(credentials, client.ClientSecretBasic)));
    expect(basicRefusal).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    if (!(basicRefusal instanceof client.WWWAuthenticateChallengeError)) return;
    expect(basicRefusal.status).toBe(401);
    expect(basicRefusal.cause).toEqual([{ scheme: 'basic', parameters: { realm: 'jwks-server', charset: 'UTF-8', error: 'invalid_client' } }]);
    expect(await basicRefusal.response.json()).toMatchObject({ error: 'invalid_client' });

    const postRefusal = await refusalOf(client.clientCredentialsGrant(await discover(credentials, client.ClientSecretPost)));
    expect(postRefusal).toBeInstanceOf(client.ResponseBodyError);
    if (!(postRefusal instanceof client.ResponseBodyError)) return;
    expect(postRefusal).toMatchObject({ status: 401, error: 'invalid_client' });
    expect(postRefusal.response.headers.get('www-authenticate')).toBeNull();
  });

  it('refuses a grant type it does not know with unsupported_grant_type, and one the client may not use with unauthorized_client', async () => {
    const config = await discover(await registerClient({}));

    const unknown = await refusalOf(client.genericGrantRequest(config, 'urn:example:unknown', {}));
    expect(unknown).toBeInstanceOf(client.ResponseBodyError);
    expect(unknown).toMatchObject({ status: 400, error: 'unsupported_grant_type' });
    const notAllowed = await refusalOf(client.genericGrantRequest(config, 'password', { username: 'nobody', password: 'wrong' }));
    expect(notAllowed).toMatchObject({ status: 400, error: 'unauthorized_client' });
  });

  it('introspects a password grant\'s token as active with its claims, and after its revocation as inactive and refused by /users/me', async () => {
    const credentials = await registerClient({ scopes: ['profile'], grantTypes: ['client_credentials', 'password'] });
    const config = await discover(credentials);
    const username = `oauth_${randomUUID().slice(0, 8)}`;
    const password = await registerUser(issuer, username);

    const { access_token: accessToken, scope } = await client.genericGrantRequest(config, 'password', { username, password });
    expect(scope).toBe('profile');
    const introspection = await client.tokenIntrospection(config, accessToken);
    expect(introspection).toMatchObject({ active: true, iss: issuer, aud: issuer, sub: username, client_id: credentials.clientId, scope: 'profile', amr: ['pwd'] });
    expect(introspection.jti).toMatch(/^[0-9a-f-]{36}$/);
    const profile = await getProfile(issuer, accessToken);
    expect(profile.status).toBe(200);
    expect(await profile.json()).toMatchObject({ username, email: `${username}@example.com` });

    await client.tokenRevocation(config, accessToken);

    expect(await client.tokenIntrospection(config, accessToken)).toEqual({ active: false });
    const refused = await getProfile(issuer, accessToken);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="jwks-server", error="invalid_token"');
    expect(await refused.json()).toMatchObject({ message: 'The token has been revoked' });
  });

  it('makes a token revoked through one server process inactive on another sharing the database within a second', async () => {
    const credentials = await registerClient({ scopes: ['read'] });
    const config = await discover(credentials);
    const throughSecond = new client.Configuration(
      { issuer, introspection_endpoint: `${secondServer.url}/oauth/introspect` },
      credentials.clientId,
      undefined,
      client.ClientSecretBasic(credentials.clientSecret),
    );
    allowPlainHttp(throughSecond);

    const { access_token: accessToken } = await client.clientCredentialsGrant(config);
    expect(await client.tokenIntrospection(throughSecond, accessToken)).toMatchObject({ active: true, client_id: credentials.clientId });
    await client.tokenRevocation(config, accessToken);
    const revokedAt = performance.now();

    let { active } = await client.tokenIntrospection(throughSecond, accessToken);
    while (active && performance.now() - revokedAt < 2000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      ({ active } = await client.tokenIntrospection(throughSecond, accessToken));
    }
    expect(active).toBe(false);
    expect(performance.now() - revokedAt).toBeLessThan(1000);
  });
});
