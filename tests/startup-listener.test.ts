import { once } from 'node:events';
import http, { type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { buildApp } from '../src/app.js';
import { SECURITY_HEADERS, SERVER_LIMITS } from '../src/server/http-defaults.js';
import { startupListener, type StartupListener } from '../src/server/startup-listener.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on a connection of its own; resolves with the answer whenever it comes. */
function request(url: string, method = 'GET', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(url, { method, agent: false, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text });
      });
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** A listener bound to a free loopback port, closed when the test ends. */
async function listener(): Promise<StartupListener & { url: string }> {
  const started = startupListener();
  onTestFinished(() => started.close());
  return Object.assign(started, { url: await started.listen({ host: '127.0.0.1', port: 0 }) });
}

/** Whether `answer` has settled after the event loop has had time to deliver an answer. */
async function settled(answer: Promise<unknown>): Promise<boolean> {
  let done = false;
  void answer.then(() => (done = true));
  await sleep(150);
  return done;
}

function expectCommonHeaders(headers: IncomingHttpHeaders): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(headers[name]).toBe(value);
  expect(headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
}

describe('startupListener', () => {
  it('accepts connections at once and holds their requests until the app serves them, in order', async () => {
    const started = await listener();
    expect(started.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const first = request(`${started.url}/first`);
    const second = request(`${started.url}/second`, 'POST', '{"n":2}');
    expect(await settled(Promise.race([first, second]))).toBe(false);

    const served: string[] = [];
    started.serve((incoming, response) => {
      served.push(`${String(incoming.method)} ${String(incoming.url)}`);
      let body = '';
      incoming.on('data', (chunk: Buffer) => (body += chunk.toString()));
      incoming.on('end', () => response.end(`${String(incoming.url)} ${body}`));
    });
    expect((await first).body).toBe('/first ');
    // The body of a held request is read by the app, not lost while it waited.
    expect((await second).body).toBe('/second {"n":2}');
    expect(served).toEqual(['GET /first', 'POST /second']);
    // Later requests go straight to the app.
    expect((await request(`${started.url}/third`)).body).toBe('/third ');
  });

  it('answers health probes while starting: alive, not ready', async () => {
    const started = await listener();
    const live = await request(`${started.url}/healthz`);
    expect(live.status).toBe(200);
    expect(JSON.parse(live.body)).toEqual({ status: 'ok' });
    expectCommonHeaders(live.headers);
    const ready = await request(`${started.url}/readyz?verbose=1`);
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({ statusCode: 503, error: 'Service Unavailable', message: 'not ready: starting' });
    expect(ready.headers['content-type']).toBe('application/json; charset=utf-8');
    expectCommonHeaders(ready.headers);
    const head = await request(`${started.url}/readyz`, 'HEAD');
    expect(head.status).toBe(503);
    expect(head.body).toBe('');
    // Other methods on those paths wait for the app, which says what it allows.
    expect(await settled(request(`${started.url}/healthz`, 'POST'))).toBe(false);
  });

  it('answers the held requests 503 and frees the port when the start is abandoned', async () => {
    const started = await listener();
    const held = request(`${started.url}/auth`, 'POST');
    expect(await settled(held)).toBe(false);
    await started.close();
    const answer = await held;
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toEqual({ statusCode: 503, error: 'Service Unavailable', message: 'the server stopped before it was ready' });
    expect(answer.headers.connection).toBe('close');
    expectCommonHeaders(answer.headers);
    expect(started.server.listening).toBe(false);
    // A second close is harmless, and nothing is served after one.
    await started.close();
    expect(
      started.serve(() => {
        throw new Error('served after close');
      }),
    ).toBe(false);
    const port = Number(new URL(started.url).port);
    const again = net.createServer().listen(port, '127.0.0.1');
    await once(again, 'listening');
    again.close();
  });

  it('hands the app no request whose client gave up while it waited', async () => {
    const started = await listener();
    const gone = http.request(`${started.url}/gone`, { method: 'POST', agent: false });
    gone.on('error', () => undefined);
    gone.end();
    const kept = request(`${started.url}/kept`);
    await sleep(100);
    gone.destroy();
    await sleep(100);
    const served: string[] = [];
    started.serve((incoming, response) => {
      served.push(String(incoming.url));
      response.end('ok');
    });
    expect((await kept).body).toBe('ok');
    expect(served).toEqual(['/kept']);
  });

  it('names an IPv6 address in brackets', async () => {
    const started = startupListener();
    onTestFinished(() => started.close());
    const url = await started.listen({ host: '::1', port: 0 });
    expect(url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect((await request(`${url}/healthz`)).status).toBe(200);
  });

  it('closes without ever having listened', async () => {
    const never = startupListener();
    await never.close();
    expect(never.server.listening).toBe(false);
  });

  it('carries the limits the app would set on a server of its own', async () => {
    const { server } = await listener();
    expect(server.headersTimeout).toBe(SERVER_LIMITS.headersTimeoutMs);
    expect(server.requestTimeout).toBe(SERVER_LIMITS.requestTimeoutMs);
    expect(server.keepAliveTimeout).toBe(SERVER_LIMITS.keepAliveTimeoutMs);
    expect(server.timeout).toBe(SERVER_LIMITS.connectionTimeoutMs);
  });

  it('fails when the port is taken, leaving nothing bound', async () => {
    const taken = await listener();
    const port = Number(new URL(taken.url).port);
    const second = startupListener();
    await expect(second.listen({ host: '127.0.0.1', port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(second.server.listening).toBe(false);
    await second.close();
  });

  it('serves a request held while the app started through the app, as the standalone server does', async () => {
    const started = await listener();
    const token = request(`${started.url}/auth`, 'POST');
    let appHandler: http.RequestListener | undefined;
    const app = buildApp({
      databaseUrl: ':memory:',
      serverFactory: (handler) => {
        appHandler = handler;
        return started.server;
      },
    });
    onTestFinished(() => app.close());
    await app.ready();
    expect(await settled(token)).toBe(false);
    if (appHandler === undefined) throw new Error('Fastify did not ask for a server');
    started.serve(appHandler);
    const answer = await token;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toHaveProperty('token');
    expect(answer.headers['x-request-id']).toBeDefined();
    // The app answers the probes now.
    expect((await request(`${started.url}/readyz`)).status).toBe(200);
  });
});
