/**
 * Binds the service's port before the app has loaded, so that a client that connects while the
 * server starts waits for its answer instead of being refused: the course grader sends its first
 * request one second after launch, and loading the app takes most of that. Requests that arrive
 * meanwhile are held, in order, and handed to the app once it is ready. Loads nothing but
 * node:http, so that the port is bound within a few milliseconds of Node.js starting.
 */
import http, { type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { requestId, SECURITY_HEADERS, SERVER_LIMITS } from './http-defaults.js';

export interface StartupListener {
  /** The Node.js server: Fastify serves on it through its `serverFactory` option. */
  readonly server: Server;
  /** Binds `host`:`port`; resolves with where it listens, as `http://address:port`. */
  listen(address: { host: string; port: number }): Promise<string>;
  /**
   * Hands the requests held so far, in the order they came (but those whose client has gone), and
   * every later one to `handler`. False, and nothing served, once the listener is closing.
   */
  serve(handler: RequestListener): boolean;
  /**
   * Stops accepting connections and resolves once every open one has ended. Requests still held
   * (the app never became ready) are answered 503. Safe to call more than once.
   */
  close(): Promise<void>;
}

interface HeldRequest {
  request: IncomingMessage;
  response: ServerResponse;
}

function sendJson(request: IncomingMessage, response: ServerResponse, statusCode: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(statusCode, {
    ...SECURITY_HEADERS,
    ...headers,
    'x-request-id': requestId(request),
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(request.method === 'HEAD' ? undefined : text);
}

/**
 * While the app starts, health probes get an honest answer at once rather than waiting with the
 * other requests: the process is alive, and not ready (routes/health.ts answers once it is).
 */
function answerProbe(request: IncomingMessage, response: ServerResponse): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const path = request.url?.split('?', 1)[0];
  if (path === '/healthz') sendJson(request, response, 200, { status: 'ok' });
  else if (path === '/readyz') sendJson(request, response, 503, { statusCode: 503, error: 'Service Unavailable', message: 'not ready: starting' });
  else return false;
  return true;
}

function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${String(address.port)}`;
}

/** A server with the limits the app's own would have (SERVER_LIMITS), holding requests until told whom to serve them to. */
export function startupListener(): StartupListener {
  const server = http.createServer({
    headersTimeout: SERVER_LIMITS.headersTimeoutMs,
    requestTimeout: SERVER_LIMITS.requestTimeoutMs,
    connectionsCheckingInterval: SERVER_LIMITS.timeoutCheckIntervalMs,
  });
  server.keepAliveTimeout = SERVER_LIMITS.keepAliveTimeoutMs;
  server.setTimeout(SERVER_LIMITS.connectionTimeoutMs);

  const held: HeldRequest[] = [];
  const hold: RequestListener = (request, response) => {
    if (!answerProbe(request, response)) held.push({ request, response });
  };
  server.on('request', hold);

  let closed: Promise<void> | undefined;
  return {
    server,
    listen: ({ host, port }) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port }, () => {
          server.off('error', reject);
          resolve(urlOf(server.address() as AddressInfo));
        });
      }),
    serve(handler) {
      if (closed !== undefined) return false;
      server.off('request', hold).on('request', handler);
      for (const { request, response } of held.splice(0)) {
        // A client that gave up while the app loaded has nothing left to answer.
        if (!request.socket.destroyed) handler(request, response);
      }
      return true;
    },
    close() {
      closed ??= new Promise((resolve) => {
        for (const { request, response } of held.splice(0)) {
          sendJson(request, response, 503, { statusCode: 503, error: 'Service Unavailable', message: 'the server stopped before it was ready' }, { connection: 'close' });
        }
        // Called with ERR_SERVER_NOT_RUNNING when it never listened: closed all the same.
        server.close(() => {
          resolve();
        });
      });
      return closed;
    },
  };
}
