import { createServer, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it, onTestFinished } from 'vitest';
import { listenForMetrics } from '../src/server/metrics-server.js';
import { basic, expectJsonError, manualClock, newTestDatabase, readyApp } from './helpers.js';
import { metricsUrl, postAuth, runServerToExit, startServer } from './server-process.js';

/** Every sample of a scrape, by series as Prometheus prints it: `name{label="value",...}`. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const separator = line.lastIndexOf(' ');
    samples.set(line.slice(0, separator), Number(line.slice(separator + 1)));
  }
  return samples;
}

async function scrape(app: FastifyInstance): Promise<Map<string, number>> {
  const response = await app.inject({ method: 'GET', url: '/metrics' });
  expect(response.statusCode).toBe(200);
  return parseExposition(response.body);
}

describe('GET /metrics', () => {
  it('serves the Prometheus text format, uncached, and 405 to other methods', async () => {
    const app = await readyApp();
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.body).toContain('# TYPE http_request_duration_seconds histogram');
    const post = await app.inject({ method: 'POST', url: '/metrics' });
    expectJsonError(post, 405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('counts and times requests by method, route pattern and status, never by raw path', async () => {
    const app = await readyApp();
    await app.inject({ method: 'POST', url: '/auth' });
    await app.inject({ method: 'POST', url: '/auth' });
    await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    await app.inject({ method: 'GET', url: '/.well-known/no-such-kid.json' });
    await app.inject({ method: 'GET', url: '/.well-known/another-unknown-kid.json' });
    await app.inject({ method: 'GET', url: '/no/such/path' });
    await app.inject({ method: 'PUT', url: '/auth' });

    const samples = await scrape(app);
    expect(samples.get('http_requests_total{method="POST",route="/auth",status_code="200"}')).toBe(2);
    expect(samples.get('http_requests_total{method="GET",route="/.well-known/jwks.json",status_code="200"}')).toBe(1);
    expect(samples.get('http_requests_total{method="GET",route="/.well-known/:kid.json",status_code="404"}')).toBe(2);
    expect(samples.get('http_requests_total{method="GET",route="unmatched",status_code="404"}')).toBe(1);
    expect(samples.get('http_requests_total{method="PUT",route="/auth",status_code="405"}')).toBe(1);
    expect(samples.get('http_request_duration_seconds_count{method="POST",route="/auth",status_code="200"}')).toBe(2);
    expect(samples.get('http_request_duration_seconds_sum{method="POST",route="/auth",status_code="200"}')).toBeGreaterThan(0);
    expect(samples.get('http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/auth",status_code="200"}')).toBe(2);
    expect([...samples.keys()].some((series) => series.includes('no-such-kid') || series.includes('/no/such/path'))).toBe(false);
  });

  it('counts tokens by algorithm and expiry, and stored keys by algorithm and state', async () => {
    const app = await readyApp({ algorithms: ['RS256', 'ES256'] });
    await app.inject({ method: 'POST', url: '/auth' });
    await app.inject({ method: 'POST', url: '/auth?alg=ES256' });
    await app.inject({ method: 'POST', url: '/auth?alg=ES256&expired=true' });

    let samples = await scrape(app);
    expect(samples.get('jwks_tokens_issued_total{alg="RS256",expired="false"}')).toBe(1);
    expect(samples.get('jwks_tokens_issued_total{alg="ES256",expired="false"}')).toBe(1);
    expect(samples.get('jwks_tokens_issued_total{alg="ES256",expired="true"}')).toBe(1);
    for (const alg of ['RS256', 'ES256']) {
      expect(samples.get(`jwks_keys{alg="${alg}",state="active"}`)).toBe(1);
      expect(samples.get(`jwks_keys{alg="${alg}",state="published"}`)).toBe(1);
      expect(samples.get(`jwks_keys{alg="${alg}",state="expired"}`)).toBe(1);
      expect(samples.get(`jwks_keys_created_total{alg="${alg}",role="active"}`)).toBe(1);
      expect(samples.get(`jwks_keys_created_total{alg="${alg}",role="successor"}`)).toBe(1);
      expect(samples.get(`jwks_keys_created_total{alg="${alg}",role="expired"}`)).toBe(1);
    }

    const [active] = (await app.keyStore.listKeys()).filter((key) => key.alg === 'RS256' && key.activatesAt <= Date.now() / 1000 && key.exp > Date.now() / 1000);
    await app.keyStore.revoke(active?.kid ?? -1, Math.floor(Date.now() / 1000));
    samples = await scrape(app);
    expect(samples.get('jwks_keys{alg="RS256",state="revoked"}')).toBe(1);
    expect(samples.get('jwks_keys{alg="RS256",state="active"}')).toBeUndefined();
  });

  it('counts each change of signing key as a rotation, and the keys made for it', async () => {
    const time = manualClock();
    const app = await readyApp({ clock: time.clock, keyTtlSeconds: 60, tokenTtlSeconds: 20, jwksMaxAgeSeconds: 10 });
    expect((await scrape(app)).get('jwks_key_rotations_total{alg="RS256"}')).toBeUndefined();

    time.advance(61);
    await app.inject({ method: 'POST', url: '/auth' });
    await app.keyring.sync();
    const samples = await scrape(app);
    expect(samples.get('jwks_key_rotations_total{alg="RS256"}')).toBe(1);
    expect(samples.get('jwks_keys{alg="RS256",state="retired"}')).toBe(1);
    // The first start made one successor; the handover lined up another behind the new active key.
    expect(samples.get('jwks_keys_created_total{alg="RS256",role="successor"}')).toBe(2);
  });

  it('counts rate-limit rejections and authentication failures by route and reason', async () => {
    const app = await readyApp({ authMode: 'strict', rateLimit: { max: 2, windowMs: 60_000 } });
    const registration = await app.inject({ method: 'POST', url: '/register', payload: { username: 'metered', email: 'metered@example.com' } });
    const { password } = registration.json<{ password: string }>();
    await app.inject({ method: 'POST', url: '/auth' });
    await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic('metered', `${password}-wrong`) } });
    await app.inject({ method: 'POST', url: '/auth' });
    await app.inject({ method: 'POST', url: '/register', payload: { username: 'metered2', email: 'metered2@example.com' } });
    await app.inject({ method: 'POST', url: '/register', payload: { username: 'metered3', email: 'metered3@example.com' } });
    await app.inject({ method: 'GET', url: '/users/me' });
    await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: 'Bearer not-a-token' } });

    const samples = await scrape(app);
    expect(samples.get('jwks_auth_failures_total{route="/auth",reason="credentials_required"}')).toBe(1);
    expect(samples.get('jwks_auth_failures_total{route="/auth",reason="wrong_credentials"}')).toBe(1);
    expect(samples.get('jwks_auth_failures_total{route="/users/me",reason="token_missing"}')).toBe(1);
    expect(samples.get('jwks_auth_failures_total{route="/users/me",reason="token_invalid"}')).toBe(1);
    expect(samples.get('jwks_rate_limit_rejections_total{route="/auth"}')).toBe(1);
    expect(samples.get('jwks_rate_limit_rejections_total{route="/register"}')).toBe(1);
    expect(samples.get('http_requests_total{method="POST",route="/auth",status_code="429"}')).toBe(1);
  });

  it('counts a token that is valid but not a registered user\'s as an authentication failure', async () => {
    const app = await readyApp();
    const { token } = (await app.inject({ method: 'POST', url: '/auth' })).json<{ token: string }>();
    expectJsonError(await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } }), 401);
    expect((await scrape(app)).get('jwks_auth_failures_total{route="/users/me",reason="not_a_registered_user"}')).toBe(1);
  });

  it('still answers when the keys cannot be counted, without the key gauge, and says why in the log', async () => {
    const warnings: string[] = [];
    const app = await readyApp({ logger: { level: 'warn', stream: { write: (line: string) => warnings.push(line) } } });
    await app.database.destroy();
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toMatch(/^jwks_keys\{/m);
    expect(response.body).toContain('http_requests_total');
    expect(warnings.some((line) => line.includes('could not count the stored keys'))).toBe(true);
  });

  it('includes Node.js process metrics when asked to', async () => {
    const app = await readyApp({ metrics: { processMetrics: true } });
    const samples = await scrape(app);
    expect(samples.get('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect([...samples.keys()].some((series) => series.startsWith('nodejs_heap_size_used_bytes'))).toBe(true);
  });
});

describe('metrics switched off or served elsewhere', () => {
  it('serves no /metrics and records nothing when turned off', async () => {
    const app = await readyApp({ metrics: false });
    await app.inject({ method: 'POST', url: '/auth' });
    expectJsonError(await app.inject({ method: 'GET', url: '/metrics' }), 404);
    expect(app.metrics.enabled).toBe(false);
    expect(await app.metrics.registry.getMetricsAsJSON()).toEqual([]);
  });

  it('collects without the route, for a listener of its own on another port', async () => {
    const app = await readyApp({ metrics: { route: false } });
    expectJsonError(await app.inject({ method: 'GET', url: '/metrics' }), 404);
    await app.inject({ method: 'POST', url: '/auth' });

    const listener = await listenForMetrics({ host: '127.0.0.1', port: 0, exposition: () => app.metrics.registry.metrics(), contentType: app.metrics.registry.contentType });
    onTestFinished(() => listener.close());
    const base = new URL(listener.url).origin;
    const response = await fetch(listener.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(parseExposition(await response.text()).get('jwks_tokens_issued_total{alg="RS256",expired="false"}')).toBe(1);

    const elsewhere = await fetch(`${base}/auth`, { method: 'POST' });
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
    const wrongMethod = await fetch(`${base}/metrics`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('the standalone server with METRICS_PORT', () => {
  it('serves the metrics, process metrics included, on that port only', async () => {
    const server = await startServer({ DATABASE_URL: await newTestDatabase(), METRICS_PORT: '0' });
    await postAuth(server.url);
    const url = metricsUrl(server.logLines);
    expect(new URL(url).port).not.toBe(new URL(server.url).port);
    const samples = parseExposition(await (await fetch(url)).text());
    expect(samples.get('jwks_tokens_issued_total{alg="RS256",expired="false"}')).toBe(1);
    expect(samples.get('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    expect(await server.stop()).toBe(0);
  });

  it.each([['one process', {}], ['WORKERS=2', { WORKERS: '2' }]])('exits 1 naming METRICS_PORT when that port is taken (%s)', async (_name, variables) => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => {
      taken.close();
    });
    const port = String((taken.address() as AddressInfo).port);
    const { code, stderr } = await runServerToExit({ DATABASE_URL: await newTestDatabase(), PORT: '0', METRICS_PORT: port, ...variables });
    expect(code).toBe(1);
    expect(stderr).toContain(`Cannot start: METRICS_PORT ${port} is already in use on 127.0.0.1`);
  });
});
