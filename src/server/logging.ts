/**
 * How the service logs: pino JSON lines with credentials, secrets and private keys redacted, and
 * one line per request, tagged with a request id a proxy may supply.
 */
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import { stdSerializers, type LoggerOptions } from 'pino';

export const REDACTED = '[Redacted]';

/**
 * Fields that never reach a log line, wherever a log call puts them (top level or one level
 * down, as in `{ req: { headers: { authorization } } }` or `{ body: { password } }`).
 */
export const REDACTED_LOG_PATHS = [
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.cookie',
  'password',
  '*.password',
  'passwordHash',
  '*.passwordHash',
  'password_hash',
  '*.password_hash',
  'privateKey',
  '*.privateKey',
  'privateKeyPem',
  '*.privateKeyPem',
  'keyEncryptionSecret',
  '*.keyEncryptionSecret',
  'client_secret',
  '*.client_secret',
  'clientSecret',
  '*.clientSecret',
  'secretDigest',
  '*.secretDigest',
  'secret_digest',
  '*.secret_digest',
  'NOT_MY_KEY',
  '*.NOT_MY_KEY',
];

const PEM_PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g;

function scrub(text: string, secrets: readonly string[]): string {
  let scrubbed = text.replace(PEM_PRIVATE_KEY, REDACTED);
  for (const secret of secrets) scrubbed = scrubbed.split(secret).join(REDACTED);
  return scrubbed;
}

function scrubStrings(value: unknown, secrets: readonly string[], depth: number): unknown {
  if (typeof value === 'string') return scrub(value, secrets);
  if (depth === 0 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item: unknown) => scrubStrings(item, secrets, depth - 1));
  return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, scrubStrings(item, secrets, depth - 1)]));
}

/**
 * Errors come from libraries whose messages and properties we do not write (a driver may quote a
 * statement, a client the command it sent): every string in one is scrubbed of PEM private keys
 * and of `secrets` before it is logged.
 */
export function scrubbedErrorSerializer(secrets: readonly string[]): (error: Error) => unknown {
  return (error) => scrubStrings(stdSerializers.err(error), secrets, 4);
}

/** pino options for the service: `level`, redaction, and errors scrubbed of `secrets` (such as NOT_MY_KEY). */
export function serviceLoggerOptions({ level = 'info', secrets = [] }: { level?: string; secrets?: readonly (string | undefined)[] } = {}): LoggerOptions {
  const known = secrets.filter((secret): secret is string => secret !== undefined && secret !== '');
  return {
    level,
    redact: { paths: REDACTED_LOG_PATHS, censor: REDACTED },
    serializers: { err: scrubbedErrorSerializer(known) },
  };
}

/**
 * Fastify logs each request twice at info level, on arrival and when answered; an operator reading
 * (or paying to store) the log wants one line per request, with the outcome. Fastify's serializers
 * reduce `req` and `res` to method, url, host, remote address and status: never headers or bodies.
 *
 * So the line of an answered request holds nothing a redaction path names, and it is written by a
 * sibling of the service's logger that skips redaction: pino's redaction clones and walks every
 * field of a line for the wildcard paths, which took about 23 µs of the 71 µs a JWKS request cost
 * (BENCHMARKS.md). A line with an error keeps it: an error may carry anything.
 */
export class OneLinePerRequest extends LogController {
  // One per logger of a context: a host app's plugin may set its own level or serializers.
  readonly #unredacted = new WeakMap<FastifyBaseLogger, FastifyBaseLogger>();

  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = { req: request, res: reply, responseTime: reply.elapsedTime };
    if (error) {
      reply.log.error({ ...line, err: error }, 'request errored');
      return;
    }
    this.#unredactedLogger(request.server.log).info({ reqId: request.id, ...line }, 'request completed');
  }

  #unredactedLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
    let unredacted = this.#unredacted.get(logger);
    if (unredacted === undefined) {
      unredacted = logger.child({}, { redact: [] });
      this.#unredacted.set(logger, unredacted);
    }
    return unredacted;
  }
}
