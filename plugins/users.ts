/** Decorates the instance with the user repository and the authenticator that checks credentials against it. */
import fp from 'fastify-plugin';
import type { AuthMode } from '../src/users/auth-modes.js';
import { createAuthenticator, type Authenticator } from '../src/users/authenticator.js';
import { createUserStore, type UserStore } from '../src/users/user-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    userStore: UserStore;
    authenticator: Authenticator;
  }
}

export interface UsersPluginOptions {
  authMode: AuthMode;
}

export default fp<UsersPluginOptions>(
  async (app, { authMode }) => {
    const userStore = createUserStore(app.database);
    app.decorate('userStore', userStore);
    app.decorate('authenticator', await createAuthenticator({ userStore, mode: authMode }));
  },
  { name: 'jwks-users', fastify: '5.x', dependencies: ['jwks-database'] },
);
