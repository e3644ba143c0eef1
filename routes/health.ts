/**
 * GET /healthz (the process answers) and GET /readyz (it can issue: the database answers and
 * every configured algorithm has a key to sign with), for load balancers and orchestrators.
 * Neither is rate limited, cached or logged as an error when it says "not ready".
 */
import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import { sql } from 'kysely';
import { DATABASE_RETRY_AFTER_SECONDS } from '../src/database/outage.js';
import { rejectOtherMethods } from './http.js';
import { describedError, errorResponses, healthResponse, readinessResponse } from './schemas.js';

const DATABASE_SILENT = 'the database does not answer';

/** What keeps the server from issuing tokens now; undefined when it is ready. */
async function readinessProblem(app: FastifyInstance): Promise<string | undefined> {
  try {
    await sql`SELECT 1`.execute(app.database);
  } catch {
    return DATABASE_SILENT;
  }
  try {
    // A snapshot exists only when every configured algorithm has a key to sign with.
    if (app.keyring.fresh() === undefined) await app.keyring.current();
    return undefined;
  } catch {
    return 'the keys to sign with can be neither loaded nor made';
  }
}

export const healthRoutes: FastifyPluginCallback = (app, _options, done) => {
  const livenessSchema = { summary: 'Liveness: the process answers', tags: ['operations'], response: { 200: { description: 'Alive.', ...healthResponse }, ...errorResponses } };
  const readinessSchema = {
    summary: 'Readiness: the database answers and every configured algorithm has a key to sign with',
    tags: ['operations'],
    response: { 200: { description: 'Ready to issue tokens.', ...readinessResponse }, 503: describedError('Not ready; `message` says what is missing.'), ...errorResponses },
  };
  app.get('/healthz', { schema: livenessSchema }, (_request, reply) => {
    void reply.header('cache-control', 'no-store').send({ status: 'ok' });
  });
  app.get('/readyz', { schema: readinessSchema }, async (_request, reply) => {
    void reply.header('cache-control', 'no-store');
    const problem = await readinessProblem(app);
    // Sent, not thrown: the error handler hides the message of every 5xx, and this one is meant to be read.
    if (problem === DATABASE_SILENT) void reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
    if (problem !== undefined) return reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: `not ready: ${problem}` });
    return { status: 'ready' as const, algorithms: [...app.keyring.algorithms] };
  });
  rejectOtherMethods(app, '/healthz', ['GET', 'HEAD']);
  rejectOtherMethods(app, '/readyz', ['GET', 'HEAD']);
  done();
};
