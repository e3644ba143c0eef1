/**
 * Property-based tests over app.inject(): generated methods, paths, query strings, headers,
 * content types and bodies against every route. Whatever arrives, the service never answers
 * 5xx, answers every 4xx in the JSON error shape (RFC 6749's on the OAuth endpoints, with
 * `Cache-Control: no-store`), leaves the database as it was when it refuses a request, and never
 * lets private key material out. fast-check prints the seed and the smallest failing request
 * when a run fails.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import fc from 'fast-check';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { INTROSPECTION_PATH, REVOCATION_PATH, TOKEN_PATH } from '../routes/oauth.js';
import { generateClientSecret } from '../src/oauth/client-secrets.js';
import type { OAuthErrorCode } from '../src/oauth/oauth-error.js';
import { basic, decodeToken, PRIVATE_JWK_MEMBERS, readyApp } from './helpers.js';
import { tokenFor } from './users-helpers.js';

const OAUTH_PATHS = [TOKEN_PATH, INTROSPECTION_PATH, REVOCATION_PATH];
const ROUTE_PATHS = [
  ...OAUTH_PATHS,
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
const FORM = 'application/x-www-form-urlencoded';

const OAUTH_ERROR_CODES: readonly OAuthErrorCode[] = [
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'unsupported_token_type',
  'server_error',
];
const OAUTH_PARAMETERS = ['grant_type', 'scope', 'username', 'password', 'token', 'token_type_hint', 'client_id', 'client_secret'];

/** Registered in code, so its secret is known before any app starts: client_credentials only, no scopes. */
const SERVICE_CLIENT = { clientId: 'service', clientSecret: generateClientSecret() };

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

const base64url = (maxLength: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9_-]{0,${String(maxLength)}}$`));
/** Strings shaped like a compact JWT that no key of ours signed, an unsigned (`alg: none`) access token among them. */
const jwtLike = fc.oneof(
  fc.tuple(base64url(60), base64url(60), base64url(60)).map((parts) => parts.join('.')),
  fc.constantFrom(
    `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${Buffer.from('{"iss":"http://localhost","sub":"service","client_id":"service","jti":"x","exp":9999999999}').toString('base64url')}.`,
    'eyJhbGciOiJSUzI1NiJ9.e30.',
    '..',
  ),
);

const path = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ROUTE_PATHS) },
  { weight: 2, arbitrary: fieldValue.map((kid) => `/.well-known/${encodeURIComponent(kid)}.json`) },
  { weight: 1, arbitrary: fc.webPath().map((generated) => (generated.startsWith('/') ? generated : `/${generated}`)) },
  { weight: 1, arbitrary: fc.constantFrom('/%zz', '/auth/', '//auth', '/.well-known/', '/.well-known/.json', '/.well-known/../auth', '/AUTH', '/auth%00', '/.well-known/1.json/x', '/oauth/token/', '/oauth/', '/OAUTH/TOKEN', '/oauth/%74oken') },
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
  fc.constantFrom('Basic', 'Basic !!!', 'Bearer', 'Bearer a.b.c', `Basic ${Buffer.from('no-colon').toString('base64')}`, basic(SERVICE_CLIENT.clientId, SERVICE_CLIENT.clientSecret)),
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

/** A form of OAuth parameters, known and not, each any number of times, with values among the right ones (the code-registered client's) and the hostile. */
const oauthFormBody = fc
  .array(
    fc.tuple(
      fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...OAUTH_PARAMETERS) }, { weight: 1, arbitrary: printable(10) }),
      fc.oneof(fieldValue, jwtLike, fc.constantFrom('client_credentials', 'password', 'read write', SERVICE_CLIENT.clientId, SERVICE_CLIENT.clientSecret)),
    ),
    { maxLength: 6 },
  )
  .map((pairs) => new URLSearchParams(pairs).toString());

const body = fc.oneof(
  fc.constant(undefined),
  fc.record({ username: fieldOrOther, password: fieldOrOther, email: fieldOrOther }, { requiredKeys: [] }).map((fields) => JSON.stringify(fields)),
  fc.record({ username: fieldValue, password: fieldValue, email: fieldValue }, { requiredKeys: [] }).map((fields) => new URLSearchParams(fields).toString()),
  oauthFormBody,
  fc.json({ maxDepth: 3 }),
  anyText(200),
  fc.constantFrom('{', '{"username":', '[]', 'null', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', ' ', 'x'.repeat(20_000)),
);

const anyRequest = fc.record({ method: fc.constantFrom(...METHODS), path, query, headers, body });

/*
 * OAuth requests name the secrets, passwords and tokens they carry by placeholders: those exist
 * only once the app under test is up (see oauthFixture), and a failing request prints readably.
 */
const CLIENT_NAMES = ['app', 'service', 'gone'] as const;
type ClientName = (typeof CLIENT_NAMES)[number];
const CLIENT_SCOPES: Record<ClientName, readonly string[]> = { app: ['read', 'write'], service: [], gone: ['read'] };
const TOKEN_NAMES = ['app', 'service', 'revoked', 'gone', 'auth', 'auth-expired', 'altered'] as const;
const secretOf = (client: string) => `{secret of ${client}}`;
const tokenNamed = (name: string) => `{token ${name}}`;
const USER_PASSWORD = '{password of known_user}';

const scope = fc.oneof(
  fc.tuple(fc.subarray(['read', 'write', 'admin']), fc.constantFrom(' ', '  ')).map(([scopes, separator]) => scopes.join(separator)),
  fc.constantFrom('read read', ' read ', 'read"', 'read\\write', 'read\twrite', 'réad', '\u0000', 'openid profile', 'x'.repeat(5000)),
  fieldValue,
);
const oauthRequest = fc.record({
  path: fc.oneof({ weight: 2, arbitrary: fc.constant(TOKEN_PATH) }, { weight: 1, arbitrary: fc.constantFrom(INTROSPECTION_PATH, REVOCATION_PATH) }),
  // How the client authenticates: RFC 6749 §2.3.1's two ways, both at once, half of one, or not at all.
  authentication: fc.constantFrom('basic', 'basic', 'post', 'post', 'basic and post', 'basic and client_id', 'client_id only', 'none'),
  client: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...CLIENT_NAMES).map((client) => ({ client, secret: secretOf(client) })) },
    { weight: 1, arbitrary: fc.record({ client: fc.oneof(fc.constantFrom(...CLIENT_NAMES), fieldValue), secret: fc.oneof(fc.constantFrom(...CLIENT_NAMES.map(secretOf)), fieldValue) }) },
  ),
  parameters: fc.record({
    grant_type: fc.option(
      fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom('client_credentials', 'client_credentials', 'password') },
        { weight: 1, arbitrary: fc.constantFrom('authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'CLIENT_CREDENTIALS', '') },
        { weight: 1, arbitrary: fieldValue },
      ),
      { freq: 10, nil: undefined },
    ),
    scope: fc.option(scope, { freq: 2, nil: undefined }),
    username: fc.option(fc.oneof({ weight: 1, arbitrary: fc.constant('known_user') }, { weight: 9, arbitrary: fieldValue }), { freq: 3, nil: undefined }),
    password: fc.option(fc.oneof(fc.constant(USER_PASSWORD), fieldValue), { freq: 3, nil: undefined }),
    token: fc.option(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...TOKEN_NAMES.map(tokenNamed)) }, { weight: 1, arbitrary: jwtLike }, { weight: 1, arbitrary: fieldValue }), { freq: 10, nil: undefined }),
    token_type_hint: fc.option(fc.oneof(fc.constantFrom('access_token', 'refresh_token'), fieldValue), { freq: 2, nil: undefined }),
  }),
  // RFC 6749 §3.1: a parameter sent twice is an invalid_request.
  repeated: fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...OAUTH_PARAMETERS) }),
  extra: fc.array(fc.tuple(fc.oneof(fc.constantFrom('__proto__', 'constructor', 'audience', 'resource'), printable(8)), fieldValue), { maxLength: 2 }),
  contentType: fc.oneof({ weight: 12, arbitrary: fc.constant(FORM) }, { weight: 1, arbitrary: fc.constantFrom(`${FORM}; charset=utf-8`, 'application/json', 'text/plain', 'application/jwt') }),
});

/** Requests shaped like the routes expect, so the handlers behind validation are reached. */
const wellFormedRequest = fc.oneof(
  fc.record({ kind: fc.constant('auth' as const), query, credentials, asHeader: fc.boolean() }),
  // Most registrations are refused before hashing a password; a valid one costs argon2 (tens of ms).
  fc.record({ kind: fc.constant('register' as const), username: fieldValue, email: fieldValue }),
  fc.record({ kind: fc.constant('profile' as const), authorization }),
  fc.record({ kind: fc.constant('key' as const), kid: fc.oneof(fieldValue, fc.integer({ min: 0, max: 9 }).map(String)), etag: fc.option(fc.oneof(fc.constant('*'), printable(30))) }),
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('oauth' as const), request: oauthRequest }) },
);

type AnyRequest = typeof anyRequest extends fc.Arbitrary<infer T> ? T : never;
type OAuthRequest = typeof oauthRequest extends fc.Arbitrary<infer T> ? T : never;
type WellFormedRequest = typeof wellFormedRequest extends fc.Arbitrary<infer T> ? T : never;

/** What stands behind the placeholders in the app under test, and which of its named tokens introspection must call active. */
interface OAuthFixture {
  values: ReadonlyMap<string, string>;
  activeTokens: Set<string>;
}

function injectOptions(request: AnyRequest): InjectOptions {
  const { method, path: url, query: search, headers: requestHeaders, body: payload } = request;
  return { method, url: `${url}${search}`, headers: requestHeaders, ...(payload === undefined ? {} : { payload }) };
}

// RFC 6749 §2.3.1: the id and secret are form-encoded before they are joined for Basic.
const formEncoded = (value: string) => new URLSearchParams([['', value]]).toString().slice(1);

function oauthOptions(request: OAuthRequest, { values }: OAuthFixture): InjectOptions {
  const real = (value: string) => values.get(value) ?? value;
  const { authentication, client: { client, secret } } = request;
  const pairs = Object.entries(request.parameters).flatMap(([name, value]): [string, string][] => (value === undefined ? [] : [[name, real(value)]]));
  const headers: Record<string, string> = { 'content-type': request.contentType };
  if (authentication.startsWith('basic')) headers.authorization = basic(formEncoded(client), formEncoded(real(secret)));
  if (['post', 'basic and post', 'basic and client_id', 'client_id only'].includes(authentication)) pairs.push(['client_id', client]);
  if (['post', 'basic and post'].includes(authentication)) pairs.push(['client_secret', real(secret)]);
  if (request.repeated !== undefined) {
    const sent = pairs.find(([name]) => name === request.repeated)?.[1];
    const repeats: [string, string][] = sent === undefined ? [[request.repeated, 'a'], [request.repeated, 'b']] : [[request.repeated, sent]];
    pairs.push(...repeats);
  }
  pairs.push(...request.extra);
  const payload = request.contentType.startsWith(FORM) ? new URLSearchParams(pairs).toString() : JSON.stringify(Object.fromEntries(pairs));
  return { method: 'POST', url: request.path, headers, payload };
}

function wellFormedOptions(request: WellFormedRequest, fixture: OAuthFixture): InjectOptions {
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
    case 'oauth':
      return oauthOptions(request.request, fixture);
  }
}

/** What a refused request must leave as it was: every table's row count and newest id, the keys' states, the revocations and the clients. */
async function databaseState(app: FastifyInstance): Promise<unknown> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT (SELECT count(*) FROM users) AS users, (SELECT max(id) FROM users) AS last_user,
           (SELECT group_concat(coalesce(last_login, '-')) FROM users) AS logins,
           (SELECT count(*) FROM auth_logs) AS auth_logs,
           (SELECT count(*) FROM keys) AS keys, (SELECT max(kid) FROM keys) AS last_kid,
           (SELECT group_concat(kid || ':' || coalesce(revoked_at, '-') || ':' || retires_at) FROM key_lifecycle) AS lifecycles,
           (SELECT group_concat(jti || ':' || exp) FROM oauth_revocations) AS revocations,
           (SELECT group_concat(client_id || ':' || hex(secret_digest) || ':' || coalesce(disabled_at, '-')) FROM oauth_clients) AS clients`.execute(app.database);
  return rows[0];
}

const PRIVATE_MATERIAL = new RegExp(`PRIVATE KEY|BEGIN [A-Z ]+-----|"(?:${PRIVATE_JWK_MEMBERS.join('|')})"\\s*:`);

/** Whether an Authorization header names the Basic scheme, as the server reads it. */
const BASIC_SCHEME = /^\s*basic(?:\s|$)/i;

/** RFC 6749 §5.2's error members, beside the statusCode and message of every other error; invalid_client is the 401, and challenges Basic when Basic was tried. */
function expectOAuthError(response: LightMyRequestResponse, options: InjectOptions, context: string): void {
  const error = response.json<Record<string, unknown>>();
  expect(Object.keys(error).sort(), context).toEqual(['error', 'error_description', 'message', 'statusCode']);
  expect(OAUTH_ERROR_CODES, context).toContain(error.error);
  expect(typeof error.error_description, context).toBe('string');
  expect(error.message, context).toBe(error.error_description);
  expect(error.error === 'invalid_client', context).toBe(response.statusCode === 401);
  const sentAuthorization = options.headers?.authorization;
  if (response.statusCode === 401 && typeof sentAuthorization === 'string' && BASIC_SCHEME.test(sentAuthorization)) {
    expect(response.headers['www-authenticate'], context).toMatch(/^Basic /);
  }
}

/** RFC 6749 §5.1. */
function expectAccessTokenResponse(response: LightMyRequestResponse, context: string): void {
  const answer = response.json<Record<string, unknown>>();
  expect(Object.keys(answer).filter((member) => !['access_token', 'token_type', 'expires_in', 'scope'].includes(member)), context).toEqual([]);
  expect(answer.token_type, context).toBe('Bearer');
  expect(answer.expires_in, context).toSatisfy((seconds) => Number.isInteger(seconds) && (seconds as number) > 0);
  if (typeof answer.access_token !== 'string') throw new Error(`${context}: no access_token`);
  const { header, claims } = decodeToken(answer.access_token);
  expect(header.typ, context).toBe('at+jwt');
  expect(claims.scope, context).toBe(answer.scope);
}

async function checkInvariants(app: FastifyInstance, options: InjectOptions): Promise<LightMyRequestResponse> {
  const before = await databaseState(app);
  const response = await app.inject(options);
  const context = `${String(options.method)} ${JSON.stringify(options.url)} -> ${String(response.statusCode)} ${response.body.slice(0, 200)}`;
  // A method Fastify does not route at all (PROPFIND, ...) is the service-wide 404 on every path, OAuth's too.
  const [pathname = ''] = typeof options.url === 'string' ? options.url.split('?') : [];
  const oauthRoute = OAUTH_PATHS.includes(pathname) && app.supportedMethods.includes(String(options.method));
  expect(response.statusCode, context).toBeLessThan(500);
  expect(response.body, context).not.toMatch(PRIVATE_MATERIAL);
  // RFC 6749 §5.1 and RFC 7662 §4: no cache keeps a token, an error about one, or an introspection answer.
  if (oauthRoute && (response.statusCode >= 400 || pathname !== REVOCATION_PATH)) expect(response.headers['cache-control'], context).toBe('no-store');
  if (response.statusCode >= 400) {
    expect(response.headers['content-type'], context).toMatch(/^application\/json/);
    if (options.method !== 'HEAD') {
      const error = response.json<Record<string, unknown>>();
      expect(error.statusCode, context).toBe(response.statusCode);
      expect(error.message, context).not.toMatch(/\bat .+:\d+:\d+/);
      // The OAuth routes' errors carry error_description; no other route's do, nor a path that is not theirs.
      if (oauthRoute || 'error_description' in error) {
        expect(pathname, context).toMatch(/^\/oauth\//);
        expectOAuthError(response, options, context);
      } else {
        expect(Object.keys(error).sort(), context).toEqual(['error', 'message', 'statusCode']);
      }
    }
    expect(await databaseState(app), context).toEqual(before);
  } else if (oauthRoute && response.statusCode === 200 && pathname === TOKEN_PATH) {
    expectAccessTokenResponse(response, context);
  }
  return response;
}

/**
 * A client in the database allowed both grants, the code-registered one, and one removed from
 * the database after it got a token; tokens of every kind, one revoked and one with claims
 * altered after signing.
 */
async function oauthFixture(app: FastifyInstance, userPassword: string): Promise<OAuthFixture> {
  const secrets: Record<ClientName, string> = {
    app: await app.clientStore.add('app', { scopes: [...CLIENT_SCOPES.app], grantTypes: ['client_credentials', 'password'] }),
    service: SERVICE_CLIENT.clientSecret,
    gone: await app.clientStore.add('gone', { scopes: [...CLIENT_SCOPES.gone] }),
  };
  const post = async (url: string, client: ClientName, form: Record<string, string>) => {
    const response = await app.inject({ method: 'POST', url, headers: { authorization: basic(client, secrets[client]), 'content-type': FORM }, payload: new URLSearchParams(form).toString() });
    expect(response.statusCode, response.body).toBe(200);
    return response;
  };
  const accessToken = async (client: ClientName) => (await post(TOKEN_PATH, client, { grant_type: 'client_credentials' })).json<{ access_token: string }>().access_token;
  const tokens = {
    app: await accessToken('app'),
    service: await accessToken('service'),
    revoked: await accessToken('app'),
    gone: await accessToken('gone'),
    auth: await tokenFor(app, { payload: { username: 'someone' } }),
    'auth-expired': await tokenFor(app, { url: '/auth?expired=true' }),
  };
  await post(REVOCATION_PATH, 'app', { token: tokens.revoked });
  expect(await app.clientStore.remove('gone')).toBe('removed');
  const [header, , signature] = tokens.app.split('.');
  const altered = `${String(header)}.${Buffer.from(JSON.stringify({ ...decodeToken(tokens.app).claims, scope: 'read write admin' })).toString('base64url')}.${String(signature)}`;
  const values = new Map<string, string>([
    ...CLIENT_NAMES.map((client) => [secretOf(client), secrets[client]] as const),
    ...Object.entries({ ...tokens, altered }).map(([name, token]) => [tokenNamed(name), token] as const),
    [USER_PASSWORD, userPassword],
  ]);
  return { values, activeTokens: new Set(['app', 'service'].map(tokenNamed)) };
}

/**
 * What the OAuth answers must agree with: only an active client's own secret gets past client
 * authentication, no token carries a scope its client may not have, introspection calls active
 * exactly the tokens that are, and a revoked token stays so.
 */
function expectOAuthOutcome(request: OAuthRequest, response: LightMyRequestResponse, fixture: OAuthFixture): void {
  if (response.statusCode !== 200) return;
  const context = `${request.path} ${JSON.stringify(request)} -> ${response.body.slice(0, 200)}`;
  const { client, secret } = request.client;
  expect(['basic', 'post', 'basic and client_id'], context).toContain(request.authentication);
  expect(['app', 'service'], context).toContain(client);
  expect(secret, context).toBe(secretOf(client));
  const token = request.parameters.token ?? '';
  if (request.path === TOKEN_PATH) {
    const granted = decodeToken(response.json<{ access_token: string }>().access_token).claims;
    expect(granted.client_id, context).toBe(client);
    for (const scopeToken of typeof granted.scope === 'string' ? granted.scope.split(' ') : []) expect(CLIENT_SCOPES[client as ClientName], context).toContain(scopeToken);
  } else if (request.path === INTROSPECTION_PATH && fixture.values.has(token)) {
    expect(response.json<{ active: boolean }>().active, context).toBe(fixture.activeTokens.has(token));
  } else if (request.path === REVOCATION_PATH) {
    fixture.activeTokens.delete(token);
  }
}

// Together 10,000 generated requests in every run of the suite; FAST_CHECK_RUNS scales them for a longer hunt.
const RUNS = Number(process.env.FAST_CHECK_RUNS ?? 5000);

describe('any request', () => {
  it(`never gets a 5xx or private key material, and a refusal changes nothing (${String(RUNS)} generated requests)`, async () => {
    const app = await readyApp({ databaseUrl: ':memory:', rateLimit: false, algorithms: ['RS256', 'ES256'], oauth: { clients: [SERVICE_CLIENT] } });
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
    const app = await readyApp({ databaseUrl: ':memory:', rateLimit: { max: 1000, windowMs: 1000 }, algorithms: ['RS256', 'ES256'], oauth: { clients: [SERVICE_CLIENT], passwordGrant: true } });
    const registered = await app.inject({ method: 'POST', url: '/register', payload: { username: 'known_user', email: 'known@example.com' } });
    const { password } = registered.json<{ password: string }>();
    const fixture = await oauthFixture(app, password);
    const statuses = new Map<number, number>();
    const oauthOutcomes = new Set<string>();
    // A registered user's password costs an argon2 verification (tens of ms): one request in a hundred.
    const knownUser = fc.record({ kind: fc.constant('auth' as const), query, credentials: fc.record({ username: fc.constant('known_user'), password: fc.oneof(fc.constant(password), fieldValue) }), asHeader: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 99, arbitrary: wellFormedRequest }, { weight: 1, arbitrary: knownUser }), async (request) => {
        const response = await checkInvariants(app, wellFormedOptions(request, fixture));
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        if (request.kind !== 'oauth') return;
        expectOAuthOutcome(request.request, response, fixture);
        const { error } = response.statusCode === 200 ? { error: '200' } : response.json<{ error: string }>();
        oauthOutcomes.add(`${request.request.path} ${error}`);
      }),
      { numRuns: RUNS },
    );
    for (const status of [200, 201, 304, 400, 401, 404]) expect(statuses.get(status) ?? 0, `status ${String(status)} among ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);
    // Every OAuth endpoint answered, and refused for every reason it has.
    const reached = [...OAUTH_PATHS.map((oauthPath) => `${oauthPath} 200`), ...OAUTH_ERROR_CODES.filter((code) => code !== 'server_error').map((code) => `${code === 'unsupported_token_type' ? REVOCATION_PATH : TOKEN_PATH} ${code}`)];
    expect([...oauthOutcomes].sort()).toEqual(expect.arrayContaining(reached));
  }, 240_000);
});
