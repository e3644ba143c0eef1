import type { FastifyInstance } from 'fastify';
import { decodeJwt, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { expectJsonError, manualClock, readyApp } from './helpers.js';
import { register, tokenFor } from './users-helpers.js';

const ISO_SECOND = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

describe('GET /users/me', () => {
  async function registeredToken(app: FastifyInstance): Promise<string> {
    const password = await register(app);
    return tokenFor(app, { payload: { username: 'testor_1a2b3c4d', password } });
  }

  function me(app: FastifyInstance, authorization?: string) {
    return app.inject({ method: 'GET', url: '/users/me', headers: authorization === undefined ? {} : { authorization } });
  }

  it("returns the caller's profile", async () => {
    const app = await readyApp();
    const response = await me(app, `Bearer ${await registeredToken(app)}`);
    expect(response.statusCode).toBe(200);
    const profile = response.json<Record<string, unknown>>();
    expect(profile).toEqual({
      username: 'testor_1a2b3c4d',
      email: 'testor_1a2b3c4d@test.com',
      date_registered: expect.stringMatching(ISO_SECOND) as unknown,
      last_login: expect.stringMatching(ISO_SECOND) as unknown,
    });
  });

  it('asks for a bearer token when there is none', async () => {
    const app = await readyApp();
    for (const authorization of [undefined, 'Basic dTpw', 'Bearer']) {
      const response = await me(app, authorization);
      expectJsonError(response, 401);
      expect(response.headers['www-authenticate']).toBe('Bearer realm="jwks-server"');
    }
  });

  it('refuses expired, forged and foreign tokens', async () => {
    const time = manualClock();
    const app = await readyApp({ clock: time.clock, tokenTtlSeconds: 60 });
    const password = await register(app);
    const token = await tokenFor(app, { payload: { username: 'testor_1a2b3c4d', password } });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const signingKey = (await app.keyring.current()).signingKey('RS256');
    const reSigned = (claims: Record<string, unknown>, kid = signingKey.kid) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(signingKey.privateKey);
    const claims = decodeJwt(token);

    const refused = {
      garbage: 'not.a.token',
      'a forged signature': `${header}.${payload}.${signature.slice(0, -4)}AAAA`,
      'a changed payload': `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.${signature}`,
      'another issuer': await reSigned({ ...claims, iss: 'https://evil.example' }),
      'an unknown kid': await reSigned(claims, '999'),
      'a token for a user that does not exist': await reSigned({ ...claims, sub: 'ghost' }),
      'a token from the expired key, for the same user': await tokenFor(app, { url: '/auth?expired=true', payload: { username: 'testor_1a2b3c4d', password } }),
    };
    for (const [name, refusedToken] of Object.entries(refused)) {
      const response = await me(app, `Bearer ${refusedToken}`);
      const expectedMessage = name === 'a token for a user that does not exist' ? 'The token was not issued to a registered user' : 'The token is invalid or expired';
      expect(expectJsonError(response, 401), name).toBe(expectedMessage);
      expect(response.headers['www-authenticate'], name).toBe('Bearer realm="jwks-server", error="invalid_token"');
    }

    expect((await me(app, `Bearer ${token}`)).statusCode).toBe(200);
    time.advance(60);
    expect((await me(app, `Bearer ${token}`)).statusCode).toBe(401);
  });

  it('requires the audience when one is configured, and accepts a token of any configured algorithm', async () => {
    const app = await readyApp({ audience: 'https://api.example', algorithms: ['ES256', 'EdDSA'] });
    const password = await register(app);
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const token = await tokenFor(app, { url: `/auth?alg=${alg}`, payload: { username: 'testor_1a2b3c4d', password } });
      expect(decodeJwt(token).aud).toBe('https://api.example');
      expect((await me(app, `Bearer ${token}`)).statusCode).toBe(200);
    }
    const token = await tokenFor(app, { payload: { username: 'testor_1a2b3c4d', password } });
    const signingKey = (await app.keyring.current()).signingKey('ES256');
    const otherAudience = await new SignJWT({ ...decodeJwt(token), aud: 'https://other.example' })
      .setProtectedHeader({ alg: 'ES256', kid: signingKey.kid })
      .sign(signingKey.privateKey);
    expect(expectJsonError(await me(app, `Bearer ${otherAudience}`), 401)).toBe('The token is invalid or expired');
  });

  it('refuses a demo token issued for a username before it was registered', async () => {
    const app = await readyApp();
    const demoToken = await tokenFor(app, { payload: { username: 'testor_1a2b3c4d' } });
    await registeredToken(app);
    const response = await me(app, `Bearer ${demoToken}`);
    expect(expectJsonError(response, 401)).toBe('The token was not issued to a registered user');
  });

  it.each(['POST', 'PUT', 'DELETE'] as const)('answers %s with 405 and Allow: GET, HEAD', async (method) => {
    const app = await readyApp();
    const response = await app.inject({ method, url: '/users/me' });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('GET, HEAD');
  });
});
