/**
 * Property-based tests over app.inject(): generated methods, paths, query strings, headers,
 * content types and bodies against every route. Whatever arrives, the service never answers
 * 5xx, answers every 4xx in the JSON error shape, leaves the database as it was when it refuses
 * a request, and never lets private key material out. fast-check prints the seed and the
 * smallest failing request when a run fails.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import fc from 'fast-check';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { basic, PRIVATE_JWK_MEMBERS, readyApp } from './helpers.js';

const ROUTE_PATHS = [
  '/auth',
  '/register',
  '/users/me',
  '/healthz',
  '/readyz',
  '/metrics',
  '/docs/json',
  '/.well-known/jwks.json',
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'SEARCH', 'PROPFIND'] as const;
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'application/xml', 'application/jwt'];

const printable = (maxLength: number) => fc.string({ unit: 'grapheme-ascii', maxLength });
const anyText = (maxLength: number) => fc.string({ unit: 'grapheme', maxLength });

/** Everything a request could carry as a username, email, password or kid: valid-looking, hostile and random. */
const fieldValue = fc.oneof(
  anyText(40),
  fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{2,20}$/),
  fc.emailAddress(),
  fc.constantFrom("' OR 1=1 --", '"; DROP TABLE keys; --', '../../etc/passwd', '\u0000', '%00', '<script>', '__proto__', 'constructor', 'demo-user', ''),
  fc.integer().map(String),
);
const fieldOrOther = fc.oneof(fieldValue, fc.integer(), fc.boolean(), fc.constant(null), fc.array(fieldValue, { maxLength: 2 }), fc.dictionary(printable(5), fieldValue, { maxKeys: 2 }));

const path = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ROUTE_PATHS) },
  { weight: 2, arbitrary: fieldValue.map((kid) => `/.well-known/${encodeURIComponent(kid)}.json`) },
  { weight: 1, arbitrary: fc.webPath().map((generated) => (generated.startsWith('/') ? generated : `/${generated}`)) },
  { weight: 1, arbitrary: fc.constantFrom('/%zz', '/auth/', '//auth', '/.well-known/', '/.well-known/.json', '/.well-known/../auth', '/AUTH', '/auth%00', '/.well-known/1.json/x') },
);

const query = fc.oneof(
  fc.constant(''),
  fc.dictionary(fc.oneof(fc.constantFrom('expired', 'alg', 'kid', '__proto__'), printable(6)), fc.oneof(fc.constantFrom('true', 'false', '1', '', 'RS256', 'ES256', 'none', 'HS256'), fieldValue), { maxKeys: 3 }).map((entries) => `?${new URLSearchParams(entries).toString()}`),
  printable(30).map((raw) => `?${encodeURI(raw)}`),
);

const credentials = fc.record({ username: fieldValue, password: fieldValue }, { requiredKeys: [] });
const authorization = fc.oneof(
  credentials.map(({ username = '', password = '' }) => basic(username, password)),
  printable(60).map((token) => `Bearer ${token}`),
  printable(40),
  fc.constantFrom('Basic', 'Basic !!!', 'Bearer', 'Bearer a.b.c', `Basic ${Buffer.from('no-colon').toString('base64')}`),
);

const headers = fc.record(
  {
    'content-type': fc.oneof(fc.constantFrom(...CONTENT_TYPES), printable(30)),
    authorization,
    'if-none-match': fc.oneof(fc.constant('*'), printable(40)),
    accept: fc.oneof(fc.constantFrom('application/json', 'text/html', '*/*'), printable(20)),
    origin: fc.constantFrom('https://app.example', 'null'),
    'x-request-id': printable(140),
    'x-forwarded-for': fc.ipV4(),
  },
  { requiredKeys: [] },
);

const body = fc.oneof(
  fc.constant(undefined),
  fc.record({ username: fieldOrOther, password: fieldOrOther, email: fieldOrOther }, { requiredKeys: [] }).map((fields) => JSON.stringify(fields)),
  fc.record({ username: fieldValue, password: fieldValue, email: fieldValue }, { requiredKeys: [] }).map((fields) => new URLSearchParams(fields).toString()),
  fc.json({ maxDepth: 3 }),
  anyText(200),
  fc.constantFrom('{', '{"username":', '[]', 'null', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', ' ', 'x'.repeat(20_000)),
);

const anyRequest = fc.record({ method: fc.constantFrom(...METHODS), path, query, headers, body });

/** Requests shaped like the routes expect, so the handlers behind validation are reached. */
const wellFormedRequest = fc.oneof(
  fc.record({ kind: fc.constant('auth' as const), query, credentials, asHeader: fc.boolean() }),
  // Most registrations are refused before hashing a password; a valid one costs argon2 (tens of ms).
  fc.record({ kind: fc.constant('register' as const), username: fieldValue, email: fieldValue }),
  fc.record({ kind: fc.constant('profile' as const), authorization }),
  fc.record({ kind: fc.constant('key' as const), kid: fc.oneof(fieldValue, fc.integer({ min: 0, max: 9 }).map(String)), etag: fc.option(fc.oneof(fc.constant('*'), printable(30))) }),
);

type AnyRequest = typeof anyRequest extends fc.Arbitrary<infer T> ? T : never;
type WellFormedRequest = typeof wellFormedRequest extends fc.Arbitrary<infer T> ? T : never;

function injectOptions(request: AnyRequest): InjectOptions {
  const { method, path: url, query: search, headers: requestHeaders, body: payload } = request;
  return { method, url: `${url}${search}`, headers: requestHeaders, ...(payload === undefined ? {} : { payload }) };
}

function wellFormedOptions(request: WellFormedRequest): InjectOptions {
  switch (request.kind) {
    case 'auth': {
      const { username, password } = request.credentials;
      if (request.asHeader && username !== undefined) return { method: 'POST', url: `/auth${request.query}`, headers: { authorization: basic(username, password ?? '') } };
      return { method: 'POST', url: `/auth${request.query}`, payload: request.credentials };
    }
    case 'register':
      return { method: 'POST', url: '/register', payload: { username: request.username, email: request.email } };
    case 'profile':
      return { method: 'GET', url: '/users/me', headers: { authorization: request.authorization } };
    case 'key':
      return { method: 'GET', url: `/.well-known/${encodeURIComponent(request.kid)}.json`, headers: request.etag === null ? {} : { 'if-none-match': request.etag } };
  }
}

/** What a refused request must leave as it was: every table's row count and newest id, and the keys' states. */
async function databaseState(app: FastifyInstance): Promise<unknown> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT (SELECT count(*) FROM users) AS users, (SELECT max(id) FROM users) AS last_user,
           (SELECT group_concat(coalesce(last_login, '-')) FROM users) AS logins,
           (SELECT count(*) FROM auth_logs) AS auth_logs,
           (SELECT count(*) FROM keys) AS keys, (SELECT max(kid) FROM keys) AS last_kid,
           (SELECT group_concat(kid || ':' || coalesce(revoked_at, '-') || ':' || retires_at) FROM key_lifecycle) AS lifecycles`.execute(app.database);
  return rows[0];
}

const PRIVATE_MATERIAL = new RegExp(`PRIVATE KEY|BEGIN [A-Z ]+-----|"(?:${PRIVATE_JWK_MEMBERS.join('|')})"\\s*:`);

async function checkInvariants(app: FastifyInstance, options: InjectOptions): Promise<LightMyRequestResponse> {
  const before = await databaseState(app);
  const response = await app.inject(options);
  const context = `${String(options.method)} ${JSON.stringify(options.url)} -> ${String(response.statusCode)} ${response.body.slice(0, 200)}`;
  expect(response.statusCode, context).toBeLessThan(500);
  expect(response.body, context).not.toMatch(PRIVATE_MATERIAL);
  if (response.statusCode >= 400) {
    expect(response.headers['content-type'], context).toMatch(/^application\/json/);
    if (options.method !== 'HEAD') {
      const error = response.json<Record<string, unknown>>();
      expect(Object.keys(error).sort(), context).toEqual(['error', 'message', 'statusCode']);
      expect(error.statusCode, context).toBe(response.statusCode);
      expect(error.message, context).not.toMatch(/\bat .+:\d+:\d+/);
    }
    expect(await databaseState(app), context).toEqual(before);
  }
  return response;
}

// Together 10,000 generated requests in every run of the suite; FAST_CHECK_RUNS scales them for a longer hunt.
const RUNS = Number(process.env.FAST_CHECK_RUNS ?? 5000);

describe('any request', () => {
  it(`never gets a 5xx or private key material, and a refusal changes nothing (${String(RUNS)} generated requests)`, async () => {
    const app = await readyApp({ databaseUrl: ':memory:', rateLimit: false, algorithms: ['RS256', 'ES256'] });
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(anyRequest, async (request) => {
        const { statusCode } = await checkInvariants(app, injectOptions(request));
        statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
      }),
      { numRuns: RUNS },
    );
    // The generators reach past validation, not only the 404 of unknown paths.
    for (const status of [200, 400, 401, 404, 405, 415]) expect(statuses.get(status) ?? 0, `status ${String(status)} among ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);
  }, 240_000);
});

describe('requests shaped like each route expects', () => {
  it(`never get a 5xx or private key material, and a refusal changes nothing (${String(RUNS)} generated requests)`, async () => {
    const app = await readyApp({ databaseUrl: ':memory:', rateLimit: { max: 1000, windowMs: 1000 }, algorithms: ['RS256', 'ES256'] });
    const registered = await app.inject({ method: 'POST', url: '/register', payload: { username: 'known_user', email: 'known@example.com' } });
    const { password } = registered.json<{ password: string }>();
    const statuses = new Map<number, number>();
    // A registered user's password costs an argon2 verification (tens of ms): one request in a hundred.
    const knownUser = fc.record({ kind: fc.constant('auth' as const), query, credentials: fc.record({ username: fc.constant('known_user'), password: fc.oneof(fc.constant(password), fieldValue) }), asHeader: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 99, arbitrary: wellFormedRequest }, { weight: 1, arbitrary: knownUser }), async (request) => {
        const { statusCode } = await checkInvariants(app, wellFormedOptions(request));
        statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
      }),
      { numRuns: RUNS },
    );
    for (const status of [200, 201, 304, 400, 401, 404]) expect(statuses.get(status) ?? 0, `status ${String(status)} among ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);
  }, 240_000);
});
