/** What the /.well-known routes share: their prefix, their options and the config of their GET routes. */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Read by @fastify/cors (its types do not declare it): `false` skips its hook on the route. */
    cors?: false;
  }
}

export const WELL_KNOWN_PREFIX = '/.well-known';

export interface WellKnownRoutesOptions {
  /** Cache-Control max-age of every document here. */
  maxAgeSeconds: number;
  issuer: string;
  audience: string | undefined;
}

/** Route config of the GET routes here: they set their CORS header themselves (see allowAnyOrigin). */
export const PUBLIC_DOCUMENT_CONFIG = { cors: false } as const;
