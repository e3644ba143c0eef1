/**
 * Everything under /.well-known/: the keys and the discovery documents. Public, cacheable and
 * readable from any origin (CORS), as browsers and edge runtimes verifying tokens need.
 */
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyPluginAsync } from 'fastify';
import { AUTHORIZATION_SERVER_METADATA_PATH, discoveryRoutes, OPENID_CONFIGURATION_PATH } from './discovery.js';
import { rejectOtherMethods, sendNotFound } from './http.js';
import { JWKS_PATH, jwksRoutes, SINGLE_KEY_PATH } from './jwks.js';
import type { WellKnownRoutesOptions } from './well-known-settings.js';

const READ_ONLY_CORS: FastifyCorsOptions = {
  origin: '*',
  methods: ['GET', 'HEAD'],
  // A plain OPTIONS (no Origin) is answered like a preflight rather than with a text/plain 400.
  strictPreflight: false,
  maxAge: 86_400,
};

// The same paths the GET routes serve: `:kid.json` matches one path segment ending in `.json`.
const SERVED_PATH = /^\/\.well-known\/(?:[^/?]+\.json|openid-configuration|oauth-authorization-server)(?:\?|$)/;

export const wellKnownRoutes: FastifyPluginAsync<WellKnownRoutesOptions> = async (app, { maxAgeSeconds, issuer, audience }) => {
  // Only these: Fastify's own options (the prefix among them) must not reach the children too.
  const options: WellKnownRoutesOptions = { maxAgeSeconds, issuer, audience };
  // @fastify/cors answers preflights through a catch-all OPTIONS route: only paths we serve get
  // one, the rest the 404 of any unknown path. (Added before the plugin, so it runs first.)
  app.addHook('onRequest', (request, reply, done) => {
    if (request.method === 'OPTIONS' && !SERVED_PATH.test(request.url)) sendNotFound(request, reply);
    else done();
  });
  await app.register(cors, READ_ONLY_CORS);
  await app.register(jwksRoutes, options);
  await app.register(discoveryRoutes, options);
  // OPTIONS is left to @fastify/cors's preflight route; every other method gets a 405.
  for (const path of [JWKS_PATH, SINGLE_KEY_PATH, OPENID_CONFIGURATION_PATH, AUTHORIZATION_SERVER_METADATA_PATH]) {
    rejectOtherMethods(app, path, ['GET', 'HEAD', 'OPTIONS']);
  }
};
