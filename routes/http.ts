/** What every route module shares: the error reply and the 405 for methods a path does not take. */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';

/**
 * Replies `{ statusCode, error, message }`. A client error keeps its message; a server error is
 * logged and its details (message, stack, anything they might hold) never reach the client.
 */
export function sendSafeError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const statusCode = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
  const reason = STATUS_CODES[statusCode] ?? 'Error';
  if (statusCode >= 500) {
    request.log.error({ err: error }, 'request failed');
    return reply.code(statusCode).send({ statusCode, error: reason, message: reason });
  }
  return reply.code(statusCode).send({ statusCode, error: reason, message: error.message });
}

const ROUTABLE_METHODS: readonly HTTPMethods[] = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'];

/** Answers every other method on `url` with 405 and an `Allow` header (RFC 9110 §15.5.6), not 404. */
export function rejectOtherMethods(app: FastifyInstance, url: string, allowed: readonly HTTPMethods[]): void {
  const allow = allowed.join(', ');
  app.route({
    method: ROUTABLE_METHODS.filter((method) => !allowed.includes(method)),
    url,
    handler: async (request, reply) => {
      void reply.header('allow', allow);
      throw app.httpErrors.methodNotAllowed(`${request.method} is not allowed here; use ${allow}`);
    },
  });
}
