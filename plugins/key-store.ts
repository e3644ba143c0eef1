/** Decorates the instance with the key repository. */
import fp from 'fastify-plugin';
import { createKeyStore, type KeyStore } from '../src/key-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    keyStore: KeyStore;
  }
}

export default fp(
  (app, _options, done) => {
    app.decorate('keyStore', createKeyStore(app.database));
    done();
  },
  { name: 'jwks-key-store', fastify: '5.x', dependencies: ['jwks-database'] },
);
