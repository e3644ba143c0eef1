/**
 * The baseline of the key endpoints: a bare Fastify route that sends the same bytes,
 * serialized in advance, with no plugin, hook or header of ours. Reads BODY_FILE and ROUTE, listens on PORT.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const body = readFileSync(process.env.BODY_FILE ?? '', 'utf8');
const app = Fastify({ logger: false });
app.get(process.env.ROUTE ?? '/', (_request, reply) => reply.type('application/json; charset=utf-8').send(body));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
