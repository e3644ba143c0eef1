/** Decorates the instance with the keyring, loaded (and the keys it needs generated) before the server is ready. */
import fp from 'fastify-plugin';
import type { Clock } from '../src/clock.js';
import { createKeyring, type Keyring } from '../src/keyring.js';

declare module 'fastify' {
  interface FastifyInstance {
    keyring: Keyring;
  }
}

export interface KeyringPluginOptions {
  keyTtlSeconds: number;
  clock: Clock;
}

export default fp<KeyringPluginOptions>(
  async (app, { keyTtlSeconds, clock }) => {
    const keyring = createKeyring({
      keyStore: app.keyStore,
      keyTtlSeconds,
      clock,
      onKeysGenerated: (kids) => {
        app.log.info({ kids }, 'generated RSA keys');
      },
    });
    const { jwks, expiredKey } = await keyring.current();
    app.log.info({ publishedKids: jwks.keys.map((jwk) => jwk.kid), expiredKid: expiredKey.kid }, 'keyring loaded');
    app.decorate('keyring', keyring);
  },
  { name: 'jwks-keyring', fastify: '5.x', dependencies: ['jwks-key-store'] },
);
