/**
 * The request limits, the headers every response carries and the request id, in a module that
 * loads nothing: the app and the listener that holds requests while the app starts share them.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The request and connection limits of the standalone server (README: Operations). */
export const SERVER_LIMITS = {
  /** The largest request body; `POST /auth` takes at most 8 KiB. Credentials and registrations are far smaller. */
  bodyLimitBytes: 16 * 1024,
  /** A client must send its request headers within this long (slow-header attacks)… */
  headersTimeoutMs: 10_000,
  /** …and its whole request within this long. */
  requestTimeoutMs: 30_000,
  /** An idle keep-alive connection is kept this long: longer than the 60 s idle time-out of common load balancers, so they close first. */
  keepAliveTimeoutMs: 72_000,
  /** A connection on which nothing at all moves for this long is closed. */
  connectionTimeoutMs: 120_000,
  /** How often Node.js checks the headers and request time-outs (its default, 30 s, would let them overrun by that much). */
  timeoutCheckIntervalMs: 1000,
} as const;

/**
 * Sent with every response. The service serves JSON to programs: no page of it is ever rendered,
 * framed or allowed to load anything, and a token never lands in a cache unless a route says so
 * (the public key documents do).
 */
export const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
} as const;

// What a proxy's X-Request-Id may be for us to log it as ours: short, and nothing that could forge structure.
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id: the caller's `X-Request-Id` when it is a plain token, a new UUID otherwise. */
export function requestId(request: IncomingMessage): string {
  const supplied = request.headers['x-request-id'];
  return typeof supplied === 'string' && ACCEPTABLE_REQUEST_ID.test(supplied) ? supplied : randomUUID();
}
