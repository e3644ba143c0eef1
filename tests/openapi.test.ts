import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { describe, expect, it, onTestFinished } from 'vitest';
import { jwksService } from '../src/app.js';
import { expectJsonError, readyApp } from './helpers.js';

interface Operation {
  summary?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  requestBody?: { required: boolean; content: Record<string, unknown> };
  responses: Record<string, { description: string; content?: Record<string, { schema: Record<string, unknown> }> }>;
}

interface OpenApiDocument {
  openapi: string;
  info: { title: string; description: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

// Every path and method the service serves, as the README lists them.
const SERVED: [string, string][] = [
  ['post', '/auth'],
  ['post', '/register'],
  ['get', '/users/me'],
  ['post', '/oauth/token'],
  ['post', '/oauth/introspect'],
  ['post', '/oauth/revoke'],
  ['get', '/healthz'],
  ['get', '/readyz'],
  ['get', '/metrics'],
  ['get', '/.well-known/jwks.json'],
  ['get', '/.well-known/{kid}.json'],
  ['get', '/.well-known/openid-configuration'],
  ['get', '/.well-known/oauth-authorization-server'],
];

async function openApiDocument(app: FastifyInstance): Promise<OpenApiDocument> {
  const response = await app.inject({ method: 'GET', url: '/docs/json' });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  return response.json<OpenApiDocument>();
}

describe('GET /docs/json', () => {
  it('describes every route the service serves, and only those', async () => {
    const app = await readyApp();
    const document = await openApiDocument(app);
    expect(document.openapi).toBe('3.1.0');
    expect(document.info.title).toBe('jwks-server');
    const documented = Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).filter((method) => method !== 'head').map((method) => [method, path]));
    expect(documented.sort()).toEqual([...SERVED].sort());
    for (const [method, path] of documented) {
      const url = (path ?? '').replace('{kid}', ':kid');
      expect(app.hasRoute({ method: (method ?? '').toUpperCase(), url }), `${String(method)} ${url}`).toBe(true);
    }
  });

  it('gives every operation a summary, a tag and described responses, errors in the one JSON shape', async () => {
    const document = await openApiDocument(await readyApp());
    expect(document.components.schemas.jwksErrorResponse).toMatchObject({ required: ['statusCode', 'error', 'message'] });
    expect(document.components.schemas.oauthErrorResponse).toMatchObject({ required: ['statusCode', 'error', 'error_description', 'message'] });
    for (const [method, path] of SERVED) {
      const operation = document.paths[path]?.[method];
      expect(operation?.summary, `${method} ${path}`).toEqual(expect.any(String));
      expect(operation?.tags).toHaveLength(1);
      const responses = Object.entries(operation?.responses ?? {});
      expect(responses.map(([status]) => status)).toEqual(expect.arrayContaining(['4XX', '5XX']));
      for (const [status, response] of responses) {
        expect(response.description, `${method} ${path} ${status}`).not.toBe('Default Response');
        const errorSchema = path.startsWith('/oauth/') ? 'oauthErrorResponse' : 'jwksErrorResponse';
        if (/^[45]/.test(status)) expect(response.content?.['application/json']?.schema).toEqual({ $ref: `#/components/schemas/${errorSchema}` });
      }
    }
  });

  it('names the specific errors of each route and how callers authenticate', async () => {
    const { paths, components } = await openApiDocument(await readyApp());
    expect(Object.keys(paths['/auth']?.post?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '401', '413', '415', '429']));
    expect(Object.keys(paths['/register']?.post?.responses ?? {})).toEqual(expect.arrayContaining(['201', '400', '409', '429']));
    expect(Object.keys(paths['/.well-known/{kid}.json']?.get?.responses ?? {})).toEqual(expect.arrayContaining(['200', '304', '404']));
    expect(Object.keys(paths['/readyz']?.get?.responses ?? {})).toEqual(expect.arrayContaining(['200', '503']));
    expect(paths['/metrics']?.get?.responses['200']?.content).toHaveProperty('text/plain');
    expect(paths['/auth']?.post?.security).toEqual([{ basic: [] }, {}]);
    // No body at all is a request without credentials, which demo mode answers with a token.
    expect(paths['/auth']?.post?.requestBody).toMatchObject({ required: false });
    expect(Object.keys(paths['/auth']?.post?.requestBody?.content ?? {})).toEqual(['application/json', 'application/x-www-form-urlencoded']);
    expect(paths['/register']?.post?.requestBody).toMatchObject({ required: true });
    expect(paths['/users/me']?.get?.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(paths['/oauth/token']?.post?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '401', '413', '415', '429']));
    for (const path of ['/oauth/token', '/oauth/introspect', '/oauth/revoke']) {
      expect(paths[path]?.post?.security).toEqual([{ basic: [] }, {}]);
      expect(Object.keys(paths[path]?.post?.requestBody?.content ?? {})).toEqual(['application/x-www-form-urlencoded']);
    }
    expect(components.securitySchemes).toEqual({ basic: { type: 'http', scheme: 'basic' }, bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } });
  });

  it('leaves /metrics out when the service does not serve it, and answers other methods with 405', async () => {
    const app = await readyApp({ metrics: { route: false } });
    expect((await openApiDocument(app)).paths).not.toHaveProperty('/metrics');
    const post = await app.inject({ method: 'POST', url: '/docs/json' });
    expectJsonError(post, 405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });
});

describe('with a host app that has @fastify/swagger already', () => {
  it('describes the service routes in the host document, beside the host app\'s own', async () => {
    const app = Fastify();
    onTestFinished(() => app.close());
    await app.register(swagger, { openapi: { info: { title: 'host app', version: '3' } } });
    app.get('/host-route', { schema: { summary: 'the host app\'s own' } }, () => ({ ok: true }));
    await app.register(jwksService, { databaseUrl: ':memory:', rateLimit: false });
    await app.ready();
    const response = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(response.statusCode, response.body).toBe(200);
    const document = response.json<OpenApiDocument>();
    expect(document.info.title).toBe('host app');
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/host-route', '/auth', '/.well-known/jwks.json']));
  });
});
