/** What every route module shares: the error reply and the 405 for methods a path does not take. */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods, preValidationHookHandler } from 'fastify';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../src/database/outage.js';
import type { CachedDocument } from '../src/keys/cached-document.js';
import { errorResponses } from './schemas.js';

export interface SafeError {
  statusCode: number;
  /** The status's reason phrase. */
  reason: string;
  /** What the client may read. */
  message: string;
  /** Seconds to wait before trying again: a 503 for an unavailable database says it in `Retry-After`. */
  retryAfterSeconds?: number;
}

const DATABASE_UNAVAILABLE: SafeError = {
  statusCode: 503,
  reason: 'Service Unavailable',
  message: 'The database is unavailable; try again later',
  retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS,
};

/**
 * What a client may see of `error`: a client error keeps its message; a server error is logged,
 * and its details (message, stack, anything they might hold) are replaced by the reason phrase.
 * A database that is unavailable for now is a 503 the client may retry, logged once per outage.
 */
export function safeError(error: Error & { statusCode?: number | undefined }, request: FastifyRequest): SafeError {
  const statusCode = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
  const reason = STATUS_CODES[statusCode] ?? 'Error';
  if (statusCode < 500) return { statusCode, reason, message: error.message };
  if (statusCode === 500 && isDatabaseUnavailable(error)) {
    request.server.databaseOutage.failed(error, routeOf(request));
    return DATABASE_UNAVAILABLE;
  }
  request.log.error({ err: error }, 'request failed');
  return { statusCode, reason, message: reason };
}

/** The route that answered `request`, as the log of a database outage names it. */
export const routeOf = ({ method, routeOptions }: Pick<FastifyRequest, 'method' | 'routeOptions'>): string => `${method} ${routeOptions.url ?? ''}`;

/** The headers of a safe error's reply beside the body. */
export function retryAfterOf({ retryAfterSeconds }: SafeError): Record<string, string> {
  return retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) };
}

/** The most of an oversized body read and thrown away before its 413 is sent, and for how long at most. */
const DISCARDED_BODY_LIMIT_BYTES = 32 * 1024 * 1024;
const DISCARD_TIMEOUT_MS = 5000;

/** Resolves once the rest of the request's body has come and been thrown away, or the bounds are reached. */
function restOfBodyDiscarded(request: FastifyRequest): Promise<void> {
  const raw = request.raw;
  if (raw.complete) return Promise.resolve();
  return new Promise((resolve) => {
    let discarded = 0;
    const finish = () => {
      clearTimeout(timer);
      raw.off('data', onData).off('end', finish).off('close', finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > DISCARDED_BODY_LIMIT_BYTES) finish();
    };
    const timer = setTimeout(finish, DISCARD_TIMEOUT_MS);
    raw.on('data', onData).once('end', finish).once('close', finish);
    raw.resume();
  });
}

/**
 * Sends the answer to `error`. Fastify refuses a body over the limit as soon as it knows (from
 * Content-Length, or once that many bytes came) and closes the connection after the 413: a
 * client still sending its body then meets a closed connection (EPIPE) instead of the answer. So
 * before a 413 the rest of the body is read and thrown away, up to a bound, and the answer goes
 * once the client has sent it all.
 */
export function sendOnceBodyIsDone(error: FastifyError, request: FastifyRequest, send: () => FastifyReply): FastifyReply | Promise<void> {
  if (error.code !== 'FST_ERR_CTP_BODY_TOO_LARGE') return send();
  return restOfBodyDiscarded(request).then(() => {
    send();
  });
}

/** Replies `{ statusCode, error, message }`, as {@link safeError} tells them. */
export function sendSafeError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply | Promise<void> {
  const safe = safeError(error, request);
  const { statusCode, reason, message } = safe;
  return sendOnceBodyIsDone(error, request, () => reply.code(statusCode).headers(retryAfterOf(safe)).send({ statusCode, error: reason, message }));
}

/**
 * A preValidation hook that refuses body fields that are present but not strings. Fastify's
 * validator would coerce them (42 to "42", ["a"] to "a"); names and passwords must arrive as
 * the strings they are.
 */
export function requireStringFields(...fields: readonly string[]): preValidationHookHandler {
  return (request, _reply, done) => {
    const body: unknown = request.body;
    const offending = typeof body === 'object' && body !== null ? fields.find((field) => field in body && typeof (body as Record<string, unknown>)[field] !== 'string') : undefined;
    if (offending === undefined) {
      done();
      return;
    }
    const error = Object.assign(new Error(`body/${offending} must be string`), { statusCode: 400 });
    done(error);
  };
}

/** The 404 of a path no route serves, in the shape Fastify's own not-found reply has. */
export function sendNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `Route ${request.method}:${request.url} not found` });
}

/**
 * Answers every other method Fastify routes on `url` with 405 and an `Allow` header
 * (RFC 9110 §15.5.6), not 404. The answer comes from an onRequest hook, before any body is read,
 * so a body the path would never accept cannot turn the 405 into a 400, 413 or 415.
 */
export function rejectOtherMethods(app: FastifyInstance, url: string, allowed: readonly HTTPMethods[], responses: Record<string, unknown> = errorResponses): void {
  const allow = allowed.join(', ');
  const reject = async (request: FastifyRequest, reply: FastifyReply) => {
    void reply.header('allow', allow);
    throw app.httpErrors.methodNotAllowed(`${request.method} is not allowed here; use ${allow}`);
  };
  app.route({
    method: app.supportedMethods.filter((method) => !allowed.includes(method)),
    url,
    // Left out of the OpenAPI document, whose description says every path answers 405 so.
    schema: { hide: true, response: responses },
    onRequest: reject,
    // Never reached, as the hook always answers; Fastify requires a handler all the same.
    handler: reject,
  });
}

/**
 * Whether an If-None-Match header matches `etag` (RFC 9110 §13.1.2): `*`, or a list of entity
 * tags compared weakly. (@fastify/etag compares the whole header with one tag, and hashes every
 * body it sends; ours are hashed once per key set.)
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/**
 * Marks a response readable from any origin (CORS). The key and discovery routes set it
 * themselves: @fastify/cors, which answers their preflights, cost their GETs about 7 % of their
 * throughput when its hook ran on every request (measured side by side against the bare-Fastify
 * baseline of bench/ while tuning them).
 */
export function allowAnyOrigin(reply: FastifyReply): FastifyReply {
  return reply.header('access-control-allow-origin', '*');
}

/**
 * Sends a pre-serialized JSON body that any client, from any origin, may cache for
 * `maxAgeSeconds`, or a 304 when the client has it.
 */
export function sendPublicDocument(request: FastifyRequest, reply: FastifyReply, document: CachedDocument, maxAgeSeconds: number): FastifyReply {
  void allowAnyOrigin(reply).header('cache-control', `public, max-age=${String(maxAgeSeconds)}`).header('etag', document.etag);
  if (matchesIfNoneMatch(request.headers['if-none-match'], document.etag)) return reply.code(304).send();
  // A string with a JSON content type is sent as it is: no serialization per request.
  return reply.type('application/json; charset=utf-8').send(document.json);
}
