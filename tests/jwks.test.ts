import type { LightMyRequestResponse } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { Jwks } from '../src/keys/keyring.js';
import { manualClock, PRIVATE_JWK_MEMBERS, readyApp } from './helpers.js';

const KEY_TTL = 3600;
const TOKEN_TTL = 600;

function jwksOf(response: LightMyRequestResponse): Jwks {
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  return response.json<Jwks>();
}

function expectNotFound(response: LightMyRequestResponse): void {
  expect(response.statusCode).toBe(404);
  expect(Object.keys(response.json<object>()).sort()).toEqual(['error', 'message', 'statusCode']);
}

describe('GET /.well-known/jwks.json', () => {
  it('publishes the active key and its successor, no expired key, and no private member', async () => {
    const app = await readyApp();
    const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    const { keys } = jwksOf(response);
    const snapshot = await app.keyring.current();

    expect(keys.map((jwk) => jwk.kid)).toEqual([snapshot.signingKey('RS256').kid, '2']);
    expect(keys.map((jwk) => jwk.kid)).not.toContain(snapshot.expiredKey('RS256').kid);
    for (const jwk of keys) {
      expect(Object.keys(jwk)).toEqual(['kty', 'kid', 'use', 'alg', 'n', 'e']);
      expect(jwk).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256', e: 'AQAB' });
      for (const member of PRIVATE_JWK_MEMBERS) expect(jwk).not.toHaveProperty(member);
    }
    expect(response.body).not.toMatch(/PRIVATE|"d"/);
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const app = await readyApp();
    const get = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    const head = await app.inject({ method: 'HEAD', url: '/.well-known/jwks.json' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.body).toBe('');
  });

  it('stops publishing a key the second its last token expires', async () => {
    const time = manualClock();
    const app = await readyApp({ keyTtlSeconds: KEY_TTL, tokenTtlSeconds: TOKEN_TTL, clock: time.clock });
    const kids = async () => jwksOf(await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).keys.map((jwk) => jwk.kid);
    expect(await kids()).toEqual(['1', '2']);

    time.advance(KEY_TTL);
    await app.keyring.sync();
    expect(await kids()).toEqual(['1', '2', '4']);
    time.advance(TOKEN_TTL - 1);
    expect(await kids()).toEqual(['1', '2', '4']);
    time.advance(1);
    expect(await kids()).toEqual(['2', '4']);
    expectNotFound(await app.inject({ method: 'GET', url: '/.well-known/1.json' }));
  });

  it('answers a failure of its own with a bare 500 that reveals nothing', async () => {
    const time = manualClock();
    const app = await readyApp({ keyTtlSeconds: KEY_TTL, clock: time.clock });
    await app.database.destroy();
    // Nothing published is left, so the keyring must go back to the (closed) database.
    time.advance(10 * KEY_TTL);

    for (const url of ['/.well-known/jwks.json', '/.well-known/1.json']) {
      const response = await app.inject({ method: 'GET', url, headers: { origin: 'https://app.example' } });
      expect(response.statusCode).toBe(500);
      expect(response.json()).toEqual({ statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' });
      // Readable cross-origin like every other answer of these routes.
      expect(response.headers['access-control-allow-origin']).toBe('*');
    }
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'QUERY'] as const)('answers %s with 405 and Allow: GET, HEAD, OPTIONS', async (method) => {
    const app = await readyApp();
    for (const url of ['/.well-known/jwks.json', '/.well-known/1.json', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const response = await app.inject({ method, url, headers: { 'content-type': 'application/json' }, payload: '{not json' });
      expect(response.statusCode).toBe(405);
      expect(response.headers.allow).toBe('GET, HEAD, OPTIONS');
      expect(response.json()).toEqual({
        statusCode: 405,
        error: 'Method Not Allowed',
        message: `${method} is not allowed here; use GET, HEAD, OPTIONS`,
      });
    }
  });
});

describe('GET /.well-known/{kid}.json', () => {
  it('serves one unexpired key as a JWKS, as published in the full set', async () => {
    const app = await readyApp();
    const [published] = jwksOf(await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).keys;
    const single = jwksOf(await app.inject({ method: 'GET', url: `/.well-known/${published?.kid ?? ''}.json` }));
    expect(single).toEqual({ keys: [published] });

    const head = await app.inject({ method: 'HEAD', url: `/.well-known/${published?.kid ?? ''}.json` });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
  });

  it('does not serve the expired key', async () => {
    const app = await readyApp();
    const { kid } = (await app.keyring.current()).expiredKey('RS256');
    expectNotFound(await app.inject({ method: 'GET', url: `/.well-known/${kid}.json` }));
  });

  it.each([
    ['an unknown kid', '999'],
    ['a kid with a leading zero', '01'],
    ['a negative kid', '-1'],
    ['a quote', '%22'],
    ['a single quote and SQL', "1'%20OR%20'1'='1"],
    ['a NUL byte', '%00'],
    ['a NUL after a real kid', '1%00'],
    ['an encoded path traversal', '..%2F..%2Fetc%2Fpasswd'],
    ['a prototype name', '__proto__'],
    ['a dotted kid', '1.1'],
    ['an empty kid', ''],
    ['5,000 characters', 'k'.repeat(5000)],
    ['a broken percent-encoding', '%ZZ'],
    ['an overlong UTF-8 dot', '%C0%AE'],
    ['a lone percent sign', '%'],
  ])('answers %s with 404', async (_name, kid) => {
    const app = await readyApp();
    expectNotFound(await app.inject({ method: 'GET', url: `/.well-known/${kid}.json` }));
  });
});

describe('unknown paths', () => {
  it.each(['/', '/jwks', '/.well-known/1', '/.well-known/jwks.json/extra', '/auth/extra', '/.well-known/openid-configuration/x', '/%ZZ'])(
    'answers GET %s with a JSON 404',
    async (url) => {
      const app = await readyApp();
      expectNotFound(await app.inject({ method: 'GET', url }));
    },
  );

  it('answers a POST with a malformed body to an unknown path with 404, not 400', async () => {
    const app = await readyApp();
    const response = await app.inject({ method: 'POST', url: '/nowhere', headers: { 'content-type': 'application/json' }, payload: '{bad' });
    expectNotFound(response);
    expect(response.json()).toEqual({ statusCode: 404, error: 'Not Found', message: 'Route POST:/nowhere not found' });
  });
});
