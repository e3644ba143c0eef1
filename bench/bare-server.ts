/**
 * The baseline of the key endpoints: bare Fastify routes that send the same bytes, serialized in
 * advance, with no plugin, hook or header of ours. ROUTES maps each path to the file holding its
 * body (JSON); listens on PORT.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const routes = JSON.parse(process.env.ROUTES ?? '{}') as Record<string, string>;
const app = Fastify({ logger: false });
for (const [path, file] of Object.entries(routes)) {
  const body = readFileSync(file, 'utf8');
  app.get(path, (_request, reply) => reply.type('application/json; charset=utf-8').send(body));
}
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
