/** GET /.well-known/jwks.json and GET /.well-known/{kid}.json: the published public keys. */
import type { FastifyPluginCallback } from 'fastify';
import { sendCachedDocument } from './http.js';
import { errorResponses, jwksResponse } from './schemas.js';
import type { WellKnownRoutesOptions } from './well-known.js';

export const JWKS_PATH = '/jwks.json';
export const SINGLE_KEY_PATH = '/:kid.json';

export const jwksRoutes: FastifyPluginCallback<WellKnownRoutesOptions> = (app, { maxAgeSeconds }, done) => {
  const schema = { response: { 200: jwksResponse, ...errorResponses } };

  app.get(JWKS_PATH, { schema }, async (request, reply) => sendCachedDocument(request, reply, (await app.keyring.current()).jwksDocument, maxAgeSeconds));

  // The kid is not validated as a number: any kid that is not a published key's, however odd
  // (quotes, NUL, dots, thousands of characters), is simply not found.
  app.get<{ Params: { kid: string } }>(SINGLE_KEY_PATH, { schema }, async (request, reply) => {
    const published = (await app.keyring.current()).findPublishedKey(request.params.kid);
    if (published === undefined) throw app.httpErrors.notFound('No published key has that kid');
    return sendCachedDocument(request, reply, published.document, maxAgeSeconds);
  });
  done();
};
