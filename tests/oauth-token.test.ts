import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { basic, decodeToken, expectJsonError, readyApp } from './helpers.js';
import { accessToken, expectOAuthError, FORM, oauthApp, postForm, registerClient, verifyAccessToken } from './oauth-helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('POST /oauth/token, client_credentials', () => {
  it('issues an RFC 9068 access token for every scope of the client, never cached, verifiable against the JWKS', async () => {
    const { app, client } = await oauthApp({ tokenTtlSeconds: 600 });
    const response = await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, client.authorization);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers.pragma).toBe('no-cache');
    const body = response.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_type']);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'read write' });

    const claims = await verifyAccessToken(app, String(body.access_token), { issuer: 'https://issuer.example', audience: 'https://issuer.example' });
    expect(claims).toEqual({
      iss: 'https://issuer.example',
      sub: 'service',
      aud: 'https://issuer.example',
      client_id: 'service',
      scope: 'read write',
      iat: expect.any(Number) as unknown,
      exp: (claims.iat ?? 0) + 600,
      jti: expect.stringMatching(UUID) as unknown,
    });
    expect(decodeToken(String(body.access_token)).header).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
  });

  it('takes the client credentials in the body as well (client_secret_post), and grants the scopes asked for', async () => {
    const { app, client } = await oauthApp();
    const response = await postForm(app, '/oauth/token', { grant_type: 'client_credentials', scope: 'write', client_id: client.clientId, client_secret: client.secret });
    expect(response.json()).toMatchObject({ scope: 'write' });
    expect(await verifyAccessToken(app, response.json<{ access_token: string }>().access_token)).toMatchObject({ scope: 'write' });
  });

  it('leaves scope out of the answer and the token when none is granted', async () => {
    const { app, client } = await oauthApp({}, {});
    const response = await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, client.authorization);
    expect(response.json()).not.toHaveProperty('scope');
    expect(await verifyAccessToken(app, response.json<{ access_token: string }>().access_token)).not.toHaveProperty('scope');
    const empty = await postForm(app, '/oauth/token', { grant_type: 'client_credentials', scope: '' }, client.authorization);
    expect(empty.json()).not.toHaveProperty('scope');
  });

  it('refuses scopes the client may not have, and malformed ones, with invalid_scope', async () => {
    const { app, client } = await oauthApp();
    expect(expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials', scope: 'read admin' }, client.authorization), 400, 'invalid_scope')).toContain('admin');
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials', scope: 'read "quoted"' }, client.authorization), 400, 'invalid_scope');
  });

  it("addresses the token to the client's audience, else the server's, else the issuer", async () => {
    const { app } = await oauthApp({ audience: 'https://api.example' });
    const own = await registerClient(app, 'own-audience', { audience: 'https://orders.example' });
    const none = await registerClient(app, 'no-audience');
    expect(await verifyAccessToken(app, await accessToken(app, own))).toMatchObject({ aud: 'https://orders.example' });
    expect(await verifyAccessToken(app, await accessToken(app, none))).toMatchObject({ aud: 'https://api.example' });
  });

  it("adds the client's extra claims, which never replace the registered ones", async () => {
    const secret = 'a secret: with spaces + pluses & colons, long enough to count';
    const app = await readyApp({
      issuer: 'https://issuer.example',
      oauth: { clients: [{ clientId: 'in-code', clientSecret: secret, scopes: ['read'], extraClaims: { tenant: 'acme', roles: ['a', 'b'] } }] },
    });
    // RFC 6749 §2.3.1: the id and secret are form-encoded before they are put in HTTP Basic.
    const encoded = new URLSearchParams({ s: secret }).toString().slice(2);
    const response = await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, basic('in-code', encoded));
    const claims = await verifyAccessToken(app, response.json<{ access_token: string }>().access_token);
    expect(claims).toMatchObject({ tenant: 'acme', roles: ['a', 'b'], sub: 'in-code', client_id: 'in-code', scope: 'read' });
    // The signer leaves out any extra claim naming a registered one, whoever registered it.
    const { token } = await app.signer.issueAccessToken({ clientId: 'in-code', subject: 'in-code', scopes: [], extraClaims: { sub: 'admin', scope: 'admin', iss: 'evil', amr: ['pwd'], tenant: 'acme' } });
    expect(await verifyAccessToken(app, token)).toMatchObject({ sub: 'in-code', iss: 'https://issuer.example', tenant: 'acme' });
    expect(decodeToken(token).claims).not.toHaveProperty('scope');
    expect(decodeToken(token).claims).not.toHaveProperty('amr');
  });
});

describe('POST /oauth/token, client authentication', () => {
  it('answers a wrong secret, an unknown client and a removed one with 401 invalid_client, challenging Basic when Basic was used', async () => {
    const { app, client } = await oauthApp();
    const wrongBasic = await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, basic(client.clientId, `${client.secret}x`));
    expectOAuthError(wrongBasic, 401, 'invalid_client');
    expect(wrongBasic.headers['www-authenticate']).toBe('Basic realm="jwks-server", charset="UTF-8", error="invalid_client"');
    const wrongPost = await postForm(app, '/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId, client_secret: 'wrong' });
    expectOAuthError(wrongPost, 401, 'invalid_client');
    expect(wrongPost.headers['www-authenticate']).toBeUndefined();
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, basic('nobody', client.secret)), 401, 'invalid_client');
    await app.clientStore.remove(client.clientId);
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, client.authorization), 401, 'invalid_client');
  });

  it('requires a client and its secret, and credentials that can be read', async () => {
    const { app, client } = await oauthApp();
    expect(expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }), 401, 'invalid_client')).toContain('required');
    expect(expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId }), 401, 'invalid_client')).toContain('client_secret');
    for (const authorization of ['Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, basic(client.clientId, '%zz')]) {
      const response = await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, authorization);
      expectOAuthError(response, 401, 'invalid_client');
      expect(response.headers['www-authenticate']).toContain('Basic');
    }
  });

  it('refuses two ways of authenticating at once, but takes a client_id that repeats the Basic one', async () => {
    const { app, client } = await oauthApp();
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials', client_secret: client.secret }, client.authorization), 400, 'invalid_request');
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials', client_id: 'other' }, client.authorization), 400, 'invalid_request');
    expect((await postForm(app, '/oauth/token', { grant_type: 'client_credentials', client_id: client.clientId }, client.authorization)).statusCode).toBe(200);
  });

  it('counts refused clients in the metrics', async () => {
    const { app } = await oauthApp();
    await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, basic('nobody', 'wrong'));
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('jwks_auth_failures_total{route="/oauth/token",reason="wrong_client_credentials"} 1');
  });
});

describe('POST /oauth/token, grants', () => {
  it('answers a missing grant_type with invalid_request and an unknown one with unsupported_grant_type', async () => {
    const { app, client } = await oauthApp();
    expectOAuthError(await postForm(app, '/oauth/token', {}, client.authorization), 400, 'invalid_request');
    for (const grant of ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'CLIENT_CREDENTIALS']) {
      expectOAuthError(await postForm(app, '/oauth/token', { grant_type: grant }, client.authorization), 400, 'unsupported_grant_type');
    }
  });

  it('takes the password grant only when it is on, and only from clients allowed it', async () => {
    const off = await oauthApp({}, { grantTypes: ['client_credentials', 'password'] });
    expectOAuthError(await postForm(off.app, '/oauth/token', { grant_type: 'password', username: 'a', password: 'b' }, off.client.authorization), 400, 'unsupported_grant_type');
    const on = await oauthApp({ oauth: { passwordGrant: true } });
    expectOAuthError(await postForm(on.app, '/oauth/token', { grant_type: 'password', username: 'a', password: 'b' }, on.client.authorization), 400, 'unauthorized_client');
  });

  it('issues a password-grant token to a registered user, logs the login, and the token speaks for the user at /users/me', async () => {
    const { app, client } = await oauthApp({ oauth: { passwordGrant: true } }, { scopes: ['profile'], grantTypes: ['password'] });
    const { password } = (await app.inject({ method: 'POST', url: '/register', payload: { username: 'alice', email: 'alice@example.com' } })).json<{ password: string }>();
    const response = await postForm(app, '/oauth/token', { grant_type: 'password', username: 'alice', password }, client.authorization);
    expect(response.statusCode, response.body).toBe(200);
    const token = response.json<{ access_token: string }>().access_token;
    expect(await verifyAccessToken(app, token)).toMatchObject({ sub: 'alice', client_id: 'service', scope: 'profile', amr: ['pwd'] });

    const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.json()).toMatchObject({ username: 'alice', last_login: expect.any(String) as unknown });
    const logs = await app.database.selectFrom('auth_logs').select('user_id').execute();
    expect(logs).toHaveLength(1);
    expect(logs[0]?.user_id).toEqual(expect.any(Number));
    // client_credentials is not this client's grant.
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, client.authorization), 400, 'unauthorized_client');
  });

  it('refuses the password grant with invalid_grant for a wrong password or a name nobody registered, and writes nothing', async () => {
    const { app, client } = await oauthApp({ oauth: { passwordGrant: true } }, { grantTypes: ['password'] });
    await app.inject({ method: 'POST', url: '/register', payload: { username: 'alice', email: 'alice@example.com' } });
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'password', username: 'alice', password: 'wrong' }, client.authorization), 400, 'invalid_grant');
    // Demo mode gives /auth tokens to unregistered names; the password grant is for users only.
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'password', username: 'nobody', password: 'x' }, client.authorization), 400, 'invalid_grant');
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'password', username: 'alice' }, client.authorization), 400, 'invalid_request');
    expect(await app.database.selectFrom('auth_logs').selectAll().execute()).toEqual([]);
  });
});

describe('POST /oauth/token, malformed requests', () => {
  it('refuses a repeated parameter, a body that is not a form, and one too large, in the RFC 6749 error shape', async () => {
    const { app, client } = await oauthApp();
    const repeated = await app.inject({ method: 'POST', url: '/oauth/token', headers: { ...FORM, authorization: client.authorization }, payload: 'grant_type=client_credentials&grant_type=password' });
    expect(expectOAuthError(repeated, 400, 'invalid_request')).toContain('grant_type');
    const json = await app.inject({ method: 'POST', url: '/oauth/token', headers: { authorization: client.authorization }, payload: { grant_type: 'client_credentials' } });
    expect(expectOAuthError(json, 415, 'invalid_request')).toContain('application/x-www-form-urlencoded');
    const large = await postForm(app, '/oauth/token', { grant_type: 'client_credentials', scope: 'x'.repeat(9000) }, client.authorization);
    expect(expectOAuthError(large, 413, 'invalid_request')).toContain('8 KiB');
    expectOAuthError(await postForm(app, '/oauth/token', { grant_type: 'client_credentials', scope: 'x'.repeat(5000) }, client.authorization), 400, 'invalid_request');
    expectOAuthError(await app.inject({ method: 'POST', url: '/oauth/token' }), 401, 'invalid_client');
  });

  it('answers other methods with 405 and Allow: POST', async () => {
    const { app } = await oauthApp();
    for (const url of ['/oauth/token', '/oauth/introspect', '/oauth/revoke']) {
      const response = await app.inject({ method: 'GET', url });
      expectOAuthError(response, 405, 'invalid_request');
      expect(response.headers.allow).toBe('POST');
    }
    expectJsonError(await app.inject({ method: 'POST', url: '/oauth/unknown' }), 404);
  });

  it('is rate limited per address like /auth, in its own error shape', async () => {
    const { app, client } = await oauthApp({ rateLimit: { max: 2, windowMs: 60_000 } });
    await accessToken(app, client);
    await accessToken(app, client);
    const limited = await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, client.authorization);
    expectOAuthError(limited, 429, 'invalid_request');
    expect(limited.headers['retry-after']).toBeDefined();
  });

  it('hides the details of a failure of its own behind server_error', async () => {
    const { app, client } = await oauthApp();
    await sql`DROP TABLE oauth_clients`.execute(app.database);
    const response = await postForm(app, '/oauth/token', { grant_type: 'client_credentials' }, client.authorization);
    expect(expectOAuthError(response, 500, 'server_error')).toBe('Internal Server Error');
  });
});
