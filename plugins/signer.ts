/** Decorates the instance with the token signer. */
import fp from 'fastify-plugin';
import type { Clock } from '../src/clock.js';
import { createSigner, type Signer } from '../src/signer.js';

declare module 'fastify' {
  interface FastifyInstance {
    signer: Signer;
  }
}

export interface SignerPluginOptions {
  tokenTtlSeconds: number;
  clock: Clock;
}

export default fp<SignerPluginOptions>(
  (app, { tokenTtlSeconds, clock }, done) => {
    app.decorate('signer', createSigner({ keyring: app.keyring, tokenTtlSeconds, clock }));
    done();
  },
  { name: 'jwks-signer', fastify: '5.x', dependencies: ['jwks-keyring'] },
);
