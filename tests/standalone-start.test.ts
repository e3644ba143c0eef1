/**
 * The standalone server between binding its port and serving: requests are held, probes answered
 * at once, and a start that fails answers what it held, exits 1 and leaves the port free.
 */
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freePort } from './free-port.js';
import { runServerToExit } from './server-process.js';

/** A TCP server that accepts connections and never answers: a PostgreSQL that hangs. */
async function silentDatabaseServer(): Promise<{ port: number; connected: Promise<net.Socket> }> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => {
    server.close();
  });
  const connected = once(server, 'connection').then(([socket]) => socket as net.Socket);
  return { port: (server.address() as net.AddressInfo).port, connected };
}

describe('the standalone server while it starts', () => {
  it('holds requests and answers probes, then on a failed start answers the held requests 503, exits 1 and frees the port', async () => {
    const database = await silentDatabaseServer();
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${String(port)}`;
    const exited = runServerToExit({ PORT: String(port), DATABASE_URL: `postgres://jwks:hunter2@127.0.0.1:${String(database.port)}/jwks` });
    // Connecting to the database comes after the port is bound.
    const connection = await database.connected;

    const held = fetch(`${baseUrl}/auth`, { method: 'POST' });
    const live = await fetch(`${baseUrl}/healthz`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${baseUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ statusCode: 503, error: 'Service Unavailable', message: 'not ready: starting' });
    let answered = false;
    void held.then(() => (answered = true));
    await sleep(200);
    expect(answered).toBe(false);

    connection.destroy();
    const response = await held;
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ statusCode: 503, error: 'Service Unavailable', message: 'the server stopped before it was ready' });
    const { code, stderr } = await exited;
    expect(code).toBe(1);
    expect(stderr).toMatch(new RegExp(`^Cannot start: DATABASE_URL "postgres://jwks:\\*\\*\\*@127\\.0\\.0\\.1:${String(database.port)}/jwks" cannot be used: `));
    expect(stderr).not.toContain('hunter2');
    const again = net.createServer().listen(port, '127.0.0.1');
    await once(again, 'listening');
    again.close();
  });
});
