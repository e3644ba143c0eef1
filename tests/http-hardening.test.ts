import type { LightMyRequestResponse } from 'fastify';
import { describe, expect, it } from 'vitest';
import { SECURITY_HEADERS, SERVER_LIMITS } from '../src/server/http-defaults.js';
import { expectJsonError, readyApp } from './helpers.js';

function expectSecurityHeaders(response: LightMyRequestResponse, cacheControl: string = SECURITY_HEADERS['cache-control']): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    expect(response.headers[name], `${name} on ${String(response.statusCode)}`).toBe(name === 'cache-control' ? cacheControl : value);
  }
  expect(response.headers['x-request-id']).toEqual(expect.any(String));
  expect(response.headers['x-powered-by']).toBeUndefined();
  expect(response.headers.server).toBeUndefined();
}

describe('security headers', () => {
  it('are on every response: success, cached document, 304 and every kind of error', async () => {
    const app = await readyApp({ jwksMaxAgeSeconds: 120, rateLimit: { max: 1, windowMs: 60_000 } });
    const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expectSecurityHeaders(jwks, 'public, max-age=120');
    expectSecurityHeaders(await app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: { 'if-none-match': String(jwks.headers.etag) } }), 'public, max-age=120');
    const token = await app.inject({ method: 'POST', url: '/auth' });
    expect(token.statusCode).toBe(200);
    // RFC 6749 §5.1: a response carrying a token must not be stored.
    expectSecurityHeaders(token, 'no-store');
    expectSecurityHeaders(await app.inject({ method: 'POST', url: '/auth' })); // 429
    expectSecurityHeaders(await app.inject({ method: 'GET', url: '/users/me' })); // 401
    expectSecurityHeaders(await app.inject({ method: 'GET', url: '/.well-known/nope.json' })); // 404 of a route
    expectSecurityHeaders(await app.inject({ method: 'GET', url: '/nope' })); // 404 of no route
    expectSecurityHeaders(await app.inject({ method: 'GET', url: '/%zz' })); // a path that cannot be decoded
    expectSecurityHeaders(await app.inject({ method: 'PATCH', url: '/register' })); // 405
    expectSecurityHeaders(await app.inject({ method: 'POST', url: '/register', headers: { 'content-type': 'application/json' }, payload: '{' })); // 400
    expectSecurityHeaders(await app.inject({ method: 'GET', url: '/metrics' }));
    expectSecurityHeaders(await app.inject({ method: 'GET', url: '/readyz' }));
  });

  it('leave nothing that names the software on a real connection', async () => {
    const app = await readyApp();
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const response = await fetch(`${address}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('server')).toBeNull();
    expect(response.headers.get('x-powered-by')).toBeNull();
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe('request limits', () => {
  it('refuses bodies over the limit with 413, in the JSON error shape, storing nothing', async () => {
    const app = await readyApp();
    const padding = 'x'.repeat(SERVER_LIMITS.bodyLimitBytes);
    const response = await app.inject({ method: 'POST', url: '/register', payload: { username: 'big_body', email: 'big@example.com', padding } });
    expectJsonError(response, 413);
    expect(await app.userStore.findByUsername('big_body')).toBeUndefined();
    expectJsonError(await app.inject({ method: 'POST', url: '/auth', payload: { username: 'u', password: 'p'.repeat(9 * 1024) } }), 413);
  });

  it('sets the connection time-outs it documents on the listening server', async () => {
    const app = await readyApp();
    await app.listen({ host: '127.0.0.1', port: 0 });
    expect(app.server.headersTimeout).toBe(SERVER_LIMITS.headersTimeoutMs);
    expect(app.server.requestTimeout).toBe(SERVER_LIMITS.requestTimeoutMs);
    expect(app.server.keepAliveTimeout).toBe(SERVER_LIMITS.keepAliveTimeoutMs);
    expect(app.server.timeout).toBe(SERVER_LIMITS.connectionTimeoutMs);
    // Each limit is shorter than the next one in a request's life, so each can act.
    expect(SERVER_LIMITS.headersTimeoutMs).toBeLessThan(SERVER_LIMITS.requestTimeoutMs);
    expect(SERVER_LIMITS.keepAliveTimeoutMs).toBeLessThan(SERVER_LIMITS.connectionTimeoutMs);
  });
});
