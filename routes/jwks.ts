/** GET /.well-known/jwks.json and GET /.well-known/{kid}.json: the published public keys. */
import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import type { KeyringSnapshot } from '../src/keyring.js';
import { allowAnyOrigin, sendPublicDocument } from './http.js';
import { errorResponses, jwksResponse } from './schemas.js';
import { PUBLIC_DOCUMENT_CONFIG, type WellKnownRoutesOptions } from './well-known.js';

export const JWKS_PATH = '/jwks.json';
export const SINGLE_KEY_PATH = '/:kid.json';

export const jwksRoutes: FastifyPluginCallback<WellKnownRoutesOptions> = (app, { maxAgeSeconds }, done) => {
  const schema = { response: { 200: jwksResponse, ...errorResponses } };
  const config = PUBLIC_DOCUMENT_CONFIG;

  // Synchronous while the snapshot is fresh, which is almost always: these are the hottest routes.
  const withSnapshot = (reply: FastifyReply, use: (snapshot: KeyringSnapshot) => FastifyReply): FastifyReply | Promise<FastifyReply> => {
    // Set first, so that every answer carries it: a 404 or a 500 must be readable cross-origin too.
    void allowAnyOrigin(reply);
    const snapshot = app.keyring.fresh();
    return snapshot === undefined ? app.keyring.current().then(use) : use(snapshot);
  };

  app.get(JWKS_PATH, { schema, config }, (request, reply) => withSnapshot(reply, ({ jwksDocument }) => sendPublicDocument(request, reply, jwksDocument, maxAgeSeconds)));

  // The kid is not validated as a number: any kid that is not a published key's, however odd
  // (quotes, NUL, dots, thousands of characters), is simply not found.
  app.get<{ Params: { kid: string } }>(SINGLE_KEY_PATH, { schema, config }, (request, reply) =>
    withSnapshot(reply, (snapshot) => {
      const published = snapshot.findPublishedKey(request.params.kid);
      if (published === undefined) throw app.httpErrors.notFound('No published key has that kid');
      return sendPublicDocument(request, reply, published.document, maxAgeSeconds);
    }),
  );
  done();
};
