/** Decorates the instance with the OAuth client registry, the revocation store and the OAuth server that uses them. */
import fp from 'fastify-plugin';
import type { Clock } from '../src/common/clock.js';
import { createClientRegistry, type ClientRegistry, type RegisteredClient } from '../src/oauth/client-registry.js';
import { createClientStore, type ClientStore } from '../src/oauth/client-store.js';
import { createOAuthServer, type OAuthServer } from '../src/oauth/oauth-server.js';
import { createRevocationStore, type RevocationStore } from '../src/oauth/revocation-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    clientStore: ClientStore;
    clientRegistry: ClientRegistry;
    revocationStore: RevocationStore;
    oauthServer: OAuthServer;
  }
}

export interface OAuthPluginOptions {
  /** Clients registered in code, beside those the admin CLI keeps in the database. */
  clients?: readonly RegisteredClient[] | undefined;
  /** Take `grant_type=password`. Default false. */
  passwordGrant?: boolean | undefined;
  clock: Clock;
}

export default fp<OAuthPluginOptions>(
  (app, { clients, passwordGrant = false, clock }, done) => {
    const clientStore = createClientStore(app.database);
    const clientRegistry = createClientRegistry({ store: clientStore, registeredClients: clients });
    const revocationStore = createRevocationStore(app.database);
    app.decorate('clientStore', clientStore);
    app.decorate('clientRegistry', clientRegistry);
    app.decorate('revocationStore', revocationStore);
    app.decorate(
      'oauthServer',
      createOAuthServer({
        signer: app.signer,
        tokenVerifier: app.tokenVerifier,
        authenticator: app.authenticator,
        userStore: app.userStore,
        clients: clientRegistry,
        revocations: revocationStore,
        passwordGrant,
        clock,
      }),
    );
    done();
  },
  { name: 'jwks-oauth', fastify: '5.x', dependencies: ['jwks-database', 'jwks-signer', 'jwks-users'] },
);
