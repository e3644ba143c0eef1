/** GET /.well-known/jwks.json and GET /.well-known/{kid}.json: the unexpired public keys. */
import type { FastifyPluginCallback, HTTPMethods } from 'fastify';
import { rejectOtherMethods } from './http.js';
import { errorResponses, jwksResponse } from './schemas.js';

const JWKS_URL = '/.well-known/jwks.json';
const SINGLE_KEY_URL = '/.well-known/:kid.json';
// HEAD comes with every GET route (Fastify's exposeHeadRoutes).
const READ_ONLY: readonly HTTPMethods[] = ['GET', 'HEAD'];

export const jwksRoutes: FastifyPluginCallback = (app, _options, done) => {
  const schema = { response: { 200: jwksResponse, ...errorResponses } };

  app.get(JWKS_URL, { schema }, async () => (await app.keyring.current()).jwks);

  // The kid is not validated as a number: any kid that is not an unexpired key's, however odd
  // (quotes, NUL, dots, thousands of characters), is simply not found.
  app.get<{ Params: { kid: string } }>(SINGLE_KEY_URL, { schema }, async (request) => {
    const jwk = (await app.keyring.current()).findPublishedKey(request.params.kid);
    if (jwk === undefined) throw app.httpErrors.notFound('No unexpired key has that kid');
    return { keys: [jwk] };
  });

  rejectOtherMethods(app, JWKS_URL, READ_ONLY);
  rejectOtherMethods(app, SINGLE_KEY_URL, READ_ONLY);
  done();
};
