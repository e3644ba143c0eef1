import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { createLocalJWKSet, errors, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { AUTH_BODY_LIMIT_BYTES } from '../routes/auth.js';
import { DEFAULT_ISSUER } from '../src/app.js';
import { DEMO_SUBJECT } from '../src/users/authenticator.js';
import { basic, countKeys, decodeToken, expectJsonError, manualClock, readyApp } from './helpers.js';

const TOKEN_TTL = 300;

function tokenOf(response: LightMyRequestResponse): string {
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = response.json<{ token: string }>();
  expect(Object.keys(body)).toEqual(['token']);
  return body.token;
}

async function verifyAgainstServedJwks(app: FastifyInstance, token: string) {
  const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  return jwtVerify(token, createLocalJWKSet(jwks.json()), { algorithms: ['RS256'] });
}

describe('POST /auth', () => {
  it('issues a token with no body at all that verifies against the served JWKS', async () => {
    const time = manualClock();
    const app = await readyApp({ tokenTtlSeconds: TOKEN_TTL, clock: time.clock });
    const token = tokenOf(await app.inject({ method: 'POST', url: '/auth' }));

    const { header, claims } = decodeToken(token);
    expect(header).toEqual({ alg: 'RS256', kid: expect.stringMatching(/^\d+$/) as string, typ: 'JWT' });
    expect(claims).toEqual({ iss: DEFAULT_ISSUER, sub: DEMO_SUBJECT, iat: time.now(), exp: time.now() + TOKEN_TTL });
    const { protectedHeader } = await verifyAgainstServedJwks(app, token);
    expect(protectedHeader.kid).toBe(header.kid);
  });

  it('takes the subject from a JSON body', async () => {
    const app = await readyApp();
    const response = await app.inject({ method: 'POST', url: '/auth', payload: { username: 'userABC', password: 'password123' } });
    expect(decodeToken(tokenOf(response)).claims.sub).toBe('userABC');
  });

  it('takes the subject from a form body', async () => {
    const app = await readyApp();
    const response = await app.inject({
      method: 'POST',
      url: '/auth',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'username=userABC&password=password123',
    });
    expect(decodeToken(tokenOf(response)).claims.sub).toBe('userABC');
  });

  it('takes the subject from HTTP Basic credentials, before the body', async () => {
    const app = await readyApp();
    const response = await app.inject({
      method: 'POST',
      url: '/auth',
      headers: { authorization: basic('basic-user', 'pa:ss') },
      payload: { username: 'body-user' },
    });
    expect(decodeToken(tokenOf(response)).claims.sub).toBe('basic-user');
  });

  it.each(['', ' \r\n'])('treats a JSON body of %j as no credentials', async (payload) => {
    const app = await readyApp();
    const response = await app.inject({ method: 'POST', url: '/auth', headers: { 'content-type': 'application/json' }, payload });
    expect(decodeToken(tokenOf(response)).claims.sub).toBe(DEMO_SUBJECT);
  });

  it('ignores authorization schemes other than Basic', async () => {
    const app = await readyApp();
    const response = await app.inject({ method: 'POST', url: '/auth', headers: { authorization: 'Bearer abc.def.ghi' } });
    expect(decodeToken(tokenOf(response)).claims.sub).toBe(DEMO_SUBJECT);
  });

  it.each(['?expired=true', '?expired=True', '?expired=1', '?expired'])('signs with the expired key for %s', async (query) => {
    const time = manualClock();
    const app = await readyApp({ clock: time.clock });
    const token = tokenOf(await app.inject({ method: 'POST', url: `/auth${query}` }));
    const { header, claims } = decodeToken(token);

    expect(claims.exp).toBeLessThan(time.now());
    expect((await app.keyring.current()).expiredKey('RS256').kid).toBe(header.kid);
    await expect(verifyAgainstServedJwks(app, token)).rejects.toThrow(errors.JWKSNoMatchingKey);
  });

  it.each(['?expired=false', '?expired=False', '?expired=0'])('signs with an unexpired key for %s', async (query) => {
    const app = await readyApp();
    const token = tokenOf(await app.inject({ method: 'POST', url: `/auth${query}` }));
    await expect(verifyAgainstServedJwks(app, token)).resolves.toBeDefined();
  });

  describe('refuses bad input with a JSON error and stores nothing', () => {
    const cases: [string, InjectOptions, number][] = [
      ['an unknown expired flag', { method: 'POST', url: '/auth?expired=maybe' }, 400],
      ['malformed JSON', { method: 'POST', url: '/auth', headers: { 'content-type': 'application/json' }, payload: '{"username":' }, 400],
      ['a JSON array', { method: 'POST', url: '/auth', payload: [] }, 400],
      ['JSON null', { method: 'POST', url: '/auth', headers: { 'content-type': 'application/json' }, payload: 'null' }, 400],
      ['an object as username', { method: 'POST', url: '/auth', payload: { username: { name: 'x' } } }, 400],
      ['an empty username', { method: 'POST', url: '/auth', payload: { username: '' } }, 400],
      ['a 257-character username', { method: 'POST', url: '/auth', payload: { username: 'u'.repeat(257) } }, 400],
      ['a repeated form field', { method: 'POST', url: '/auth', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'username=a&username=b' }, 400],
      ['prototype poisoning', { method: 'POST', url: '/auth', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"admin":true}}' }, 400],
      ['Basic credentials that are not base64', { method: 'POST', url: '/auth', headers: { authorization: 'Basic %%%' } }, 400],
      ['the Basic scheme alone', { method: 'POST', url: '/auth', headers: { authorization: 'Basic' } }, 400],
      ['Basic with two tokens', { method: 'POST', url: '/auth', headers: { authorization: 'basic dTpw dTpw' } }, 400],
      ['a Basic username over the limit', { method: 'POST', url: '/auth', headers: { authorization: basic('u'.repeat(257), 'p') } }, 400],
      ['Basic credentials without a colon', { method: 'POST', url: '/auth', headers: { authorization: `Basic ${Buffer.from('nocolon').toString('base64')}` } }, 400],
      ['Basic credentials without a username', { method: 'POST', url: '/auth', headers: { authorization: basic('', 'secret') } }, 400],
      ['a body over the limit', { method: 'POST', url: '/auth', payload: { username: 'u', password: 'p'.repeat(AUTH_BODY_LIMIT_BYTES) } }, 413],
      ['plain text', { method: 'POST', url: '/auth', headers: { 'content-type': 'text/plain' }, payload: 'username=u' }, 400],
      ['a content type it does not read', { method: 'POST', url: '/auth', headers: { 'content-type': 'application/xml' }, payload: '<username>u</username>' }, 415],
    ];

    it.each(cases)('%s', async (_name, request, statusCode) => {
      const app = await readyApp();
      const keysBefore = await countKeys(app);
      expectJsonError(await app.inject(request), statusCode);
      expect(await countKeys(app)).toBe(keysBefore);
    });
  });

  it.each(['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'QUERY'] as const)('answers %s with 405 and Allow: POST', async (method) => {
    const app = await readyApp();
    const response = await app.inject({ method, url: '/auth' });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('POST');
    if (method !== 'HEAD') expect(expectJsonError(response, 405)).toBe(`${method} is not allowed here; use POST`);
  });

  it.each([
    ['malformed JSON', { 'content-type': 'application/json' }, '{"username":'],
    ['a type it does not read', { 'content-type': 'application/xml' }, '<username/>'],
    ['a body over the limit', { 'content-type': 'application/json' }, JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) })],
  ])('answers PUT with %s with 405 too, without reading the body', async (_name, headers, payload) => {
    const app = await readyApp();
    const response = await app.inject({ method: 'PUT', url: '/auth', headers, payload });
    expect(expectJsonError(response, 405)).toBe('PUT is not allowed here; use POST');
    expect(response.headers.allow).toBe('POST');
  });
});
