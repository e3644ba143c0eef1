import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { REDACTED, scrubbedErrorSerializer } from '../src/server/logging.js';
import { basic, readyApp } from './helpers.js';

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  req?: { method: string; url: string; remoteAddress: string };
  res?: { statusCode: number };
  responseTime?: number;
  [field: string]: unknown;
}

/** The app with its log lines captured as they are written: pino JSON, one per line. */
async function loggedApp(level: string, options: Parameters<typeof readyApp>[0] = {}): Promise<{ app: FastifyInstance; lines: string[]; parsed: () => LogLine[] }> {
  const lines: string[] = [];
  const app = await readyApp({ ...options, logger: { level, stream: { write: (line: string) => lines.push(line) } } });
  return { app, lines, parsed: () => lines.map((line) => JSON.parse(line) as LogLine) };
}

describe('request logging', () => {
  it('writes one line per request, when it is answered, with a request id it also sends back', async () => {
    const { app, parsed } = await loggedApp('info');
    const before = parsed().length;
    const responses = [
      await app.inject({ method: 'GET', url: '/.well-known/jwks.json' }),
      await app.inject({ method: 'POST', url: '/auth' }),
      await app.inject({ method: 'GET', url: '/no/such/path' }),
      await app.inject({ method: 'DELETE', url: '/auth' }),
    ];

    const requestLines = parsed().slice(before);
    expect(requestLines.map((line) => line.msg)).toEqual(['request completed', 'request completed', 'request completed', 'request completed']);
    expect(requestLines.map((line) => [line.req?.method, line.req?.url, line.res?.statusCode])).toEqual([
      ['GET', '/.well-known/jwks.json', 200],
      ['POST', '/auth', 200],
      ['GET', '/no/such/path', 404],
      ['DELETE', '/auth', 405],
    ]);
    for (const [index, line] of requestLines.entries()) {
      expect(line.reqId).toMatch(/^[0-9a-f-]{36}$/);
      expect(responses[index]?.headers['x-request-id']).toBe(line.reqId);
      expect(line.responseTime).toBeGreaterThanOrEqual(0);
      expect(line.req?.remoteAddress).toBe('127.0.0.1');
    }
    expect(new Set(requestLines.map((line) => line.reqId)).size).toBe(4);
  });

  it('takes the request id a proxy supplies when it is a plain token, and makes its own otherwise', async () => {
    const { app, parsed } = await loggedApp('info');
    const supplied = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'lb-7f3a.91:2' } });
    expect(supplied.headers['x-request-id']).toBe('lb-7f3a.91:2');
    expect(parsed().at(-1)?.reqId).toBe('lb-7f3a.91:2');

    for (const forged of ['two words', '{"level":60}', 'x'.repeat(129), '']) {
      const response = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': forged } });
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(parsed().at(-1)?.reqId).toBe(response.headers['x-request-id']);
    }
  });

  it('logs each request on arrival too, at debug level only', async () => {
    const { app, parsed } = await loggedApp('debug');
    const before = parsed().length;
    await app.inject({ method: 'GET', url: '/healthz' });
    expect(parsed().slice(before).map((line) => line.msg)).toEqual(['incoming request', 'request completed']);
  });
});

describe('redaction', () => {
  it('never writes credentials, tokens, NOT_MY_KEY or private keys, even at trace level', async () => {
    const secret = 'not-my-key-4f1c9a7e-secret';
    const { app, lines } = await loggedApp('trace', { authMode: 'strict', keyEncryptionSecret: secret });
    const registration = await app.inject({ method: 'POST', url: '/register', payload: { username: 'logged_user', email: 'logged@example.com' } });
    const { password } = registration.json<{ password: string }>();
    const byHeader = await app.inject({ method: 'POST', url: '/auth', headers: { authorization: basic('logged_user', password) } });
    const byBody = await app.inject({ method: 'POST', url: '/auth', payload: { username: 'logged_user', password } });
    await app.inject({ method: 'POST', url: '/auth', payload: { username: 'logged_user', password: `${password}-wrong` } });
    const { token } = byBody.json<{ token: string }>();
    expect(byHeader.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);

    // What a careless log call elsewhere (a host app, a future route) might pass.
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';
    app.log.info({ request: { headers: { authorization: basic('logged_user', password), cookie: 'session=1' } }, body: { password }, NOT_MY_KEY: secret, privateKeyPem: pem }, 'careless');
    app.log.error({ err: new Error(`could not import ${pem} with ${secret}`) }, 'careless error');

    const log = lines.join('');
    for (const sensitive of [password, basic('logged_user', password).slice('Basic '.length), token, token.split('.')[2] ?? token, secret, 'PRIVATE KEY', 'session=1']) {
      expect(log).not.toContain(sensitive);
    }
    const careless = lines.map((line) => JSON.parse(line) as LogLine).find((line) => line.msg === 'careless');
    expect(careless).toMatchObject({ request: { headers: { authorization: REDACTED, cookie: REDACTED } }, body: { password: REDACTED }, NOT_MY_KEY: REDACTED, privateKeyPem: REDACTED });
    const carelessError = lines.map((line) => JSON.parse(line) as LogLine).find((line) => line.msg === 'careless error');
    expect(carelessError?.err).toMatchObject({ message: `could not import ${REDACTED} with ${REDACTED}` });
  });

  it('scrubs every string an error carries, in arrays and nested objects too, to a bounded depth', () => {
    const secret = 'swordfish-0123456789';
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----';
    const error = Object.assign(new Error('failed'), { command: { name: 'auth', args: ['default', secret] }, detail: { nested: { pem, count: 3 } } });
    const serialized = scrubbedErrorSerializer([secret])(error);
    expect(serialized).toMatchObject({ message: 'failed', command: { name: 'auth', args: ['default', REDACTED] }, detail: { nested: { pem: REDACTED, count: 3 } } });
    expect(JSON.stringify(serialized)).not.toContain(secret);
    // Deeper than four levels, values are left as they are rather than walked without end.
    const deep = Object.assign(new Error('deep'), { a: { b: { c: { d: 'left alone' } } } });
    expect(scrubbedErrorSerializer([])(deep)).toMatchObject({ a: { b: { c: { d: 'left alone' } } } });
  });

  it('keeps a 500\'s details in the log, scrubbed, and out of the response', async () => {
    const { app, parsed } = await loggedApp('info');
    await app.database.destroy();
    const response = await app.inject({ method: 'POST', url: '/register', payload: { username: 'after_close', email: 'after@example.com' } });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({ statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' });
    const failure = parsed().find((line) => line.msg === 'request failed');
    expect(failure?.reqId).toBe(response.headers['x-request-id']);
    expect(failure?.err).toMatchObject({ type: expect.any(String) as string, message: expect.any(String) as string });
  });
});
