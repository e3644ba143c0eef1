/** Decorates the instance with the key repository, its keys encrypted at rest when a secret is given. */
import fp from 'fastify-plugin';
import { prepareKeyCipher } from '../src/keys/key-cipher.js';
import { createKeyStore, type KeyStore } from '../src/keys/key-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    keyStore: KeyStore;
  }
}

export interface KeyStorePluginOptions {
  /** The secret private keys are encrypted with; without one they are stored as PEM. */
  keyEncryptionSecret?: string | undefined;
}

export default fp<KeyStorePluginOptions>(
  async (app, { keyEncryptionSecret }) => {
    const { cipher, sealedNow } = await prepareKeyCipher(app.database, keyEncryptionSecret);
    if (!cipher.encrypted) app.log.warn('NOT_MY_KEY is not set: private keys are stored unencrypted (PEM) in the database');
    if (sealedNow > 0) app.log.info({ keys: sealedNow }, 'encrypted private keys that were stored as PEM');
    app.decorate('keyStore', createKeyStore(app.database, cipher));
  },
  { name: 'jwks-key-store', fastify: '5.x', dependencies: ['jwks-database'] },
);
