/** GET /.well-known/jwks.json and GET /.well-known/{kid}.json: the published public keys. */
import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import type { KeyringSnapshot } from '../src/keys/keyring.js';
import { allowAnyOrigin, sendPublicDocument } from './http.js';
import { describedError, errorResponses, jwksResponse, notModifiedResponse } from './schemas.js';
import { PUBLIC_DOCUMENT_CONFIG, type WellKnownRoutesOptions } from './well-known-settings.js';

export const JWKS_PATH = '/jwks.json';
export const SINGLE_KEY_PATH = '/:kid.json';

export const jwksRoutes: FastifyPluginCallback<WellKnownRoutesOptions> = (app, { maxAgeSeconds }, done) => {
  const config = PUBLIC_DOCUMENT_CONFIG;
  const setSchema = {
    summary: 'The published public keys (JWKS)',
    description: 'Every unexpired, unrevoked key: the one signing now, its successor, and keys retired while tokens they signed are still valid. Cacheable (`Cache-Control`, `ETag`), readable from any origin.',
    tags: ['keys'],
    response: { 200: { description: 'A JSON Web Key Set (RFC 7517).', ...jwksResponse }, 304: notModifiedResponse, ...errorResponses },
  };
  const singleKeySchema = {
    summary: 'One published public key, by kid',
    tags: ['keys'],
    response: {
      200: { description: 'A JSON Web Key Set holding that one key.', ...jwksResponse },
      304: notModifiedResponse,
      404: describedError('No published key has that kid: it never existed, expired or was revoked.'),
      ...errorResponses,
    },
  };

  // Synchronous while the snapshot is fresh, which is almost always: these are the hottest routes.
  const withSnapshot = (reply: FastifyReply, use: (snapshot: KeyringSnapshot) => FastifyReply): FastifyReply | Promise<FastifyReply> => {
    // Set first, so that every answer carries it: a 404 or a 500 must be readable cross-origin too.
    void allowAnyOrigin(reply);
    const snapshot = app.keyring.fresh();
    return snapshot === undefined ? app.keyring.current().then(use) : use(snapshot);
  };

  app.get(JWKS_PATH, { schema: setSchema, config }, (request, reply) => withSnapshot(reply, ({ jwksDocument }) => sendPublicDocument(request, reply, jwksDocument, maxAgeSeconds)));

  // The kid is not validated as a number: any kid that is not a published key's, however odd
  // (quotes, NUL, dots, thousands of characters), is simply not found.
  app.get<{ Params: { kid: string } }>(SINGLE_KEY_PATH, { schema: singleKeySchema, config }, (request, reply) =>
    withSnapshot(reply, (snapshot) => {
      const published = snapshot.findPublishedKey(request.params.kid);
      if (published === undefined) throw app.httpErrors.notFound('No published key has that kid');
      return sendPublicDocument(request, reply, published.document, maxAgeSeconds);
    }),
  );
  done();
};
