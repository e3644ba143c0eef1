import { describe, expect, it } from 'vitest';
import { basic, manualClock, newTestDatabase, readyApp } from './helpers.js';
import { accessToken, expectOAuthError, oauthApp, postForm, registerClient } from './oauth-helpers.js';

describe('POST /oauth/introspect', () => {
  it('answers an active access token with its claims, never cached', async () => {
    const { app, client } = await oauthApp();
    const token = await accessToken(app, client, { scope: 'read' });
    const response = await postForm(app, '/oauth/introspect', { token }, client.authorization);
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.json()).toEqual({
      active: true,
      token_type: 'Bearer',
      client_id: 'service',
      scope: 'read',
      sub: 'service',
      iss: 'https://issuer.example',
      aud: 'https://issuer.example',
      iat: expect.any(Number) as unknown,
      exp: expect.any(Number) as unknown,
      jti: expect.any(String) as unknown,
    });
  });

  it('answers any client, for tokens of other clients and other audiences too', async () => {
    const { app, client } = await oauthApp({ audience: 'https://api.example' });
    const resourceServer = await registerClient(app, 'resource-server', { audience: 'https://elsewhere.example' });
    const token = await accessToken(app, resourceServer);
    expect((await postForm(app, '/oauth/introspect', { token }, client.authorization)).json()).toMatchObject({ active: true, client_id: 'resource-server', aud: 'https://elsewhere.example' });
  });

  it('says a token of POST /auth is not an active access token: in demo mode it names any subject asked for', async () => {
    const { app, client } = await oauthApp();
    const authToken = (await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic('service', 'anything') } })).json<{ token: string }>().token;
    expect((await postForm(app, '/oauth/introspect', { token: authToken, token_type_hint: 'access_token' }, client.authorization)).json()).toEqual({ active: false });
  });

  it('answers anything else with only active: false', async () => {
    const clock = manualClock();
    const { app, client } = await oauthApp({ clock: clock.clock, tokenTtlSeconds: 60 });
    const expiring = await accessToken(app, client);
    const expiredAuthToken = (await app.inject({ method: 'POST', url: '/auth?expired=true' })).json<{ token: string }>().token;
    const [header = '', payload = ''] = expiring.split('.');
    const forged = `${header}.${payload}.${'A'.repeat(342)}`;
    for (const token of ['', 'garbage', 'a.b.c', forged, expiredAuthToken]) {
      expect((await postForm(app, '/oauth/introspect', { token }, client.authorization)).json(), token).toEqual({ active: false });
    }
    clock.advance(61);
    expect((await postForm(app, '/oauth/introspect', { token: expiring }, client.authorization)).json()).toEqual({ active: false });
  });

  it("ends a removed client's tokens, at introspection and at /users/me", async () => {
    const { app, client } = await oauthApp({ oauth: { passwordGrant: true } });
    const other = await registerClient(app, 'other', { grantTypes: ['client_credentials', 'password'] });
    const token = await accessToken(app, other);
    const { password } = (await app.inject({ method: 'POST', url: '/register', payload: { username: 'alice', email: 'alice@example.com' } })).json<{ password: string }>();
    const userToken = (await postForm(app, '/oauth/token', { grant_type: 'password', username: 'alice', password }, other.authorization)).json<{ access_token: string }>().access_token;
    const me = () => app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${userToken}` } });
    expect((await me()).statusCode).toBe(200);
    await app.clientStore.remove(other.clientId);
    expect((await postForm(app, '/oauth/introspect', { token }, client.authorization)).json()).toEqual({ active: false });
    const refused = await me();
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ message: 'The client the token was issued to has been removed' });
  });

  it('requires client authentication and a token', async () => {
    const { app, client } = await oauthApp();
    const token = await accessToken(app, client);
    expectOAuthError(await postForm(app, '/oauth/introspect', { token }), 401, 'invalid_client');
    expectOAuthError(await postForm(app, '/oauth/introspect', { token }, basic('service', 'wrong')), 401, 'invalid_client');
    expect(expectOAuthError(await postForm(app, '/oauth/introspect', {}, client.authorization), 400, 'invalid_request')).toContain('token');
  });
});

describe('POST /oauth/revoke', () => {
  it('revokes an access token: 200 with no body, then inactive, and refused by /users/me', async () => {
    const { app, client } = await oauthApp({ oauth: { passwordGrant: true } }, { grantTypes: ['password'] });
    const { password } = (await app.inject({ method: 'POST', url: '/register', payload: { username: 'alice', email: 'alice@example.com' } })).json<{ password: string }>();
    const token = (await postForm(app, '/oauth/token', { grant_type: 'password', username: 'alice', password }, client.authorization)).json<{ access_token: string }>().access_token;
    const me = () => app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } });
    expect((await me()).statusCode).toBe(200);

    const response = await postForm(app, '/oauth/revoke', { token, token_type_hint: 'access_token' }, client.authorization);
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('');
    expect((await postForm(app, '/oauth/introspect', { token }, client.authorization)).json()).toEqual({ active: false });
    const refused = await me();
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ message: 'The token has been revoked' });
    expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
    // Revoking again changes nothing.
    expect((await postForm(app, '/oauth/revoke', { token }, client.authorization)).statusCode).toBe(200);
  });

  it('answers 200 for a token that is invalid or expired already, and records nothing', async () => {
    const { app, client } = await oauthApp();
    for (const token of ['garbage', 'a.b.c', (await app.inject({ method: 'POST', url: '/auth?expired=true' })).json<{ token: string }>().token]) {
      expect((await postForm(app, '/oauth/revoke', { token }, client.authorization)).statusCode).toBe(200);
    }
    expect(await app.database.selectFrom('oauth_revocations').selectAll().execute()).toEqual([]);
  });

  it("refuses /auth tokens, which have no id to revoke, and another client's tokens", async () => {
    const { app, client } = await oauthApp();
    const authToken = (await app.inject({ method: 'POST', url: '/auth' })).json<{ token: string }>().token;
    expectOAuthError(await postForm(app, '/oauth/revoke', { token: authToken }, client.authorization), 400, 'unsupported_token_type');
    const other = await registerClient(app, 'other');
    const othersToken = await accessToken(app, other);
    expectOAuthError(await postForm(app, '/oauth/revoke', { token: othersToken }, client.authorization), 400, 'unauthorized_client');
    expect((await postForm(app, '/oauth/introspect', { token: othersToken }, client.authorization)).json()).toMatchObject({ active: true });
    expectOAuthError(await postForm(app, '/oauth/revoke', { token: othersToken }), 401, 'invalid_client');
  });

  it('keeps a revocation only until the token would have expired', async () => {
    const clock = manualClock();
    const { app, client } = await oauthApp({ clock: clock.clock, tokenTtlSeconds: 60 });
    const first = await accessToken(app, client);
    await postForm(app, '/oauth/revoke', { token: first }, client.authorization);
    clock.advance(61);
    await postForm(app, '/oauth/revoke', { token: await accessToken(app, client) }, client.authorization);
    const kept = await app.database.selectFrom('oauth_revocations').select('exp').execute();
    expect(kept).toEqual([{ exp: clock.now() + 60 }]);
  });

  it('holds on every instance that shares the database, at once', async () => {
    const databaseUrl = await newTestDatabase();
    const one = await readyApp({ databaseUrl, issuer: 'https://issuer.example', oauth: { passwordGrant: true } });
    const two = await readyApp({ databaseUrl, issuer: 'https://issuer.example', oauth: { passwordGrant: true } });
    const client = await registerClient(one, 'service', { grantTypes: ['client_credentials', 'password'] });
    const { password } = (await one.inject({ method: 'POST', url: '/register', payload: { username: 'bob', email: 'bob@example.com' } })).json<{ password: string }>();
    const token = (await postForm(one, '/oauth/token', { grant_type: 'password', username: 'bob', password }, client.authorization)).json<{ access_token: string }>().access_token;
    expect((await two.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    await postForm(one, '/oauth/revoke', { token }, client.authorization);
    expect((await postForm(two, '/oauth/introspect', { token }, client.authorization)).json()).toEqual({ active: false });
    expect((await two.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
  });
});
