import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { setTimeout } from 'node:timers/promises';
import { sql } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import { SIGNING_ALGORITHMS } from '../src/keys/algorithms.js';
import { createClientStore } from '../src/oauth/client-store.js';
import { SCOPES_REFRESH_MS } from '../routes/discovery.js';
import { decodeToken, expectJsonError, manualClock, newTestDatabase, PRIVATE_JWK_MEMBERS, readDatabase, readyApp } from './helpers.js';

const KEY_URLS = ['/.well-known/jwks.json', '/.well-known/1.json'];
const DISCOVERY_URLS = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'];

describe('HTTP caching of the key and discovery documents', () => {
  it.each([...KEY_URLS, ...DISCOVERY_URLS])('%s: public max-age of JWKS_MAX_AGE, a strong ETag, and 304 when the client has it', async (url) => {
    const app = await readyApp({ jwksMaxAgeSeconds: 120 });
    const first = await app.inject({ method: 'GET', url });
    expect(first.statusCode).toBe(200);
    expect(first.headers['cache-control']).toBe('public, max-age=120');
    const etag = first.headers.etag;
    expect(etag).toMatch(/^"[\w-]{43}"$/);

    const again = await app.inject({ method: 'GET', url });
    expect(again.headers.etag).toBe(etag);
    for (const ifNoneMatch of [String(etag), `W/${String(etag)}`, `"other", ${String(etag)}`, '*']) {
      const cached = await app.inject({ method: 'GET', url, headers: { 'if-none-match': ifNoneMatch } });
      expect(cached.statusCode).toBe(304);
      expect(cached.body).toBe('');
      expect(cached.headers.etag).toBe(etag);
      expect(cached.headers['cache-control']).toBe('public, max-age=120');
    }
    const stale = await app.inject({ method: 'GET', url, headers: { 'if-none-match': '"stale"' } });
    expect(stale.statusCode).toBe(200);
    expect(stale.body).toBe(first.body);
  });

  it('gives the JWKS a new ETag when the published set changes, and only then', async () => {
    const time = manualClock();
    const app = await readyApp({ keyTtlSeconds: 600, tokenTtlSeconds: 60, jwksMaxAgeSeconds: 60, clock: time.clock });
    const etagNow = async () => (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).headers.etag;
    const original = await etagNow();

    // Key 2 starts signing in place of key 1: the published set is the same.
    time.advance(600);
    expect(await etagNow()).toBe(original);
    await app.keyring.sync();
    const withNewSuccessor = await etagNow();
    expect(withNewSuccessor).not.toBe(original);
    const stale = await app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: { 'if-none-match': String(original) } });
    expect(stale.statusCode).toBe(200);
  });

  it('never caches an error', async () => {
    const app = await readyApp();
    const missing = await app.inject({ method: 'GET', url: '/.well-known/999.json' });
    expectJsonError(missing, 404);
    expect(missing.headers['cache-control']).toBe('no-store');
    expect(missing.headers.etag).toBeUndefined();
  });
});

describe('CORS on the key and discovery documents', () => {
  it.each([...KEY_URLS, ...DISCOVERY_URLS])('%s is readable from any origin, errors included', async (url) => {
    const app = await readyApp();
    const response = await app.inject({ method: 'GET', url, headers: { origin: 'https://app.example' } });
    expect(response.headers['access-control-allow-origin']).toBe('*');
    // A wildcard origin does not vary by Origin, so shared caches keep one copy.
    expect(response.headers.vary).toBeUndefined();
    const missing = await app.inject({ method: 'GET', url: '/.well-known/999.json', headers: { origin: 'https://app.example' } });
    expect(missing.headers['access-control-allow-origin']).toBe('*');
  });

  it.each([...KEY_URLS, ...DISCOVERY_URLS])('%s answers a preflight with 204 for GET and HEAD', async (url) => {
    const app = await readyApp();
    const response = await app.inject({
      method: 'OPTIONS',
      url,
      headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'if-none-match' },
    });
    expect(response.statusCode).toBe(204);
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(response.headers['access-control-allow-methods']).toBe('GET, HEAD');
    expect(response.headers['access-control-allow-headers']).toBe('if-none-match');
    expect(response.body).toBe('');
  });

  it('answers OPTIONS on a path it does not serve with the JSON 404, and on /auth with the 405', async () => {
    const app = await readyApp();
    expectJsonError(await app.inject({ method: 'OPTIONS', url: '/.well-known/change-password', headers: { origin: 'https://a.example' } }), 404);
    expectJsonError(await app.inject({ method: 'OPTIONS', url: '/.well-known/1.json/x' }), 404);
    const auth = await app.inject({ method: 'OPTIONS', url: '/auth', headers: { origin: 'https://a.example', 'access-control-request-method': 'POST' } });
    expectJsonError(auth, 405);
    expect(auth.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('discovery', () => {
  it.each(DISCOVERY_URLS)('%s names the issuer, the JWKS, the OAuth endpoints, the grants, the scopes and the algorithms', async (url) => {
    const databaseUrl = await newTestDatabase();
    await readDatabase(databaseUrl, async (db) => {
      const clientStore = createClientStore(db);
      await clientStore.add('stored', { scopes: ['orders:read', 'orders:write'] });
      await clientStore.add('removed', { scopes: ['gone'] });
      await clientStore.remove('removed');
    });
    const app = await readyApp({
      databaseUrl,
      issuer: 'https://id.example.com/tenant/',
      algorithms: ['ES256', 'RS256'],
      audience: 'https://api.example.com',
      oauth: { clients: [{ clientId: 'in-code', clientSecret: 'x'.repeat(43), scopes: ['orders:read', 'admin'] }] },
    });
    const response = await app.inject({ method: 'GET', url });
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    const methods = ['client_secret_basic', 'client_secret_post'];
    expect(response.json()).toEqual({
      issuer: 'https://id.example.com/tenant/',
      jwks_uri: 'https://id.example.com/tenant/.well-known/jwks.json',
      token_endpoint: 'https://id.example.com/tenant/oauth/token',
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: methods,
      introspection_endpoint: 'https://id.example.com/tenant/oauth/introspect',
      introspection_endpoint_auth_methods_supported: methods,
      revocation_endpoint: 'https://id.example.com/tenant/oauth/revoke',
      revocation_endpoint_auth_methods_supported: methods,
      scopes_supported: ['admin', 'orders:read', 'orders:write'],
      response_types_supported: [],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256', 'RS256'],
      claims_supported: ['iss', 'sub', 'aud', 'iat', 'exp', 'amr', 'client_id', 'scope', 'jti'],
    });
  });

  it('lists the password grant only when it is on', async () => {
    const app = await readyApp({ oauth: { passwordGrant: true } });
    const response = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
    expect(response.json()).toMatchObject({ grant_types_supported: ['client_credentials', 'password'] });
  });

  it('names its endpoints after the address the client used when the issuer is not a URL', async () => {
    const app = await readyApp();
    const response = await app.inject({ method: 'GET', url: '/.well-known/openid-configuration', headers: { host: 'keys.internal:8443' } });
    expect(response.json()).toMatchObject({
      issuer: 'jwks-server',
      jwks_uri: 'http://keys.internal:8443/.well-known/jwks.json',
      token_endpoint: 'http://keys.internal:8443/oauth/token',
      introspection_endpoint: 'http://keys.internal:8443/oauth/introspect',
      revocation_endpoint: 'http://keys.internal:8443/oauth/revoke',
    });
  });

  it('lists the scopes of clients registered later, by another process, within about a second', async () => {
    const databaseUrl = await newTestDatabase();
    const app = await readyApp({ databaseUrl });
    const scopes = async () => (await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json<{ scopes_supported: string[] }>().scopes_supported;
    expect(await scopes()).toEqual([]);
    await readDatabase(databaseUrl, (db) => createClientStore(db).add('later', { scopes: ['reports'] }));
    await vi.waitFor(async () => {
      expect(await scopes()).toEqual(['reports']);
    }, { timeout: 3000, interval: 100 });
  });

  it('keeps serving the scopes it last read when they cannot be read again', async () => {
    const app = await readyApp({ oauth: { clients: [{ clientId: 'in-code', clientSecret: 'x'.repeat(43), scopes: ['kept'] }] } });
    const first = await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' });
    expect(first.json()).toMatchObject({ scopes_supported: ['kept'] });
    await sql`DROP TABLE oauth_clients`.execute(app.database);
    await setTimeout(SCOPES_REFRESH_MS + 100);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const response = await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' });
      expect(response.statusCode).toBe(200);
      expect(response.headers.etag).toBe(first.headers.etag);
    }
  });
});

describe('several algorithms', () => {
  it('publishes a key of the right type for each, and signs with the one asked for', async () => {
    const app = await readyApp({ algorithms: [...SIGNING_ALGORITHMS], rateLimit: false });
    const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
    const shapes = jwks.keys.map(({ kty, crv, alg }) => `${alg ?? ''}:${kty ?? ''}:${crv ?? ''}`);
    expect(new Set(shapes)).toEqual(new Set(['RS256:RSA:', 'PS256:RSA:', 'ES256:EC:P-256', 'ES384:EC:P-384', 'EdDSA:OKP:Ed25519']));
    expect(jwks.keys).toHaveLength(10);
    for (const jwk of jwks.keys) for (const member of PRIVATE_JWK_MEMBERS) expect(jwk).not.toHaveProperty(member);

    const keySet = createLocalJWKSet(jwks);
    for (const algorithm of SIGNING_ALGORITHMS) {
      const response = await app.inject({ method: 'POST', url: `/auth?alg=${algorithm}` });
      const { token } = response.json<{ token: string }>();
      expect(decodeToken(token).header.alg).toBe(algorithm);
      const { protectedHeader } = await jwtVerify(token, keySet, { algorithms: [algorithm] });
      expect(jwks.keys.find((jwk) => jwk.kid === protectedHeader.kid)?.alg).toBe(algorithm);

      const expired = (await app.inject({ method: 'POST', url: `/auth?alg=${algorithm}&expired=true` })).json<{ token: string }>().token;
      expect(decodeToken(expired).header.alg).toBe(algorithm);
      expect(jwks.keys.map((jwk) => jwk.kid)).not.toContain(decodeToken(expired).header.kid);
    }
  });

  it('signs with the first configured algorithm by default and refuses one it is not configured for', async () => {
    const app = await readyApp({ algorithms: ['ES384', 'RS256'] });
    const { token } = (await app.inject({ method: 'POST', url: '/auth' })).json<{ token: string }>();
    expect(decodeToken(token).header.alg).toBe('ES384');
    for (const alg of ['PS256', 'HS256', 'none', 'rs256', '']) {
      const message = expectJsonError(await app.inject({ method: 'POST', url: `/auth?alg=${alg}` }), 400);
      expect(message).toContain('alg');
    }
  });
});
