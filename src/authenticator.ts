/** Decides, from the credentials of a `POST /auth`, whom a token is for, or that none is issued. */
import type { Credentials } from './basic-credentials.js';
import { verifyAgainstDecoy, verifyPassword } from './passwords.js';
import type { User, UserStore } from './user-store.js';

/**
 * `demo`: anyone gets a token, but a registered user's password is checked.
 * `strict`: only a registered user with the right password gets a token.
 */
export const AUTH_MODES = ['demo', 'strict'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** The subject of a demo token requested without a username. */
export const DEMO_SUBJECT = 'demo-user';

export type Authentication =
  /** A registered user whose password was verified. */
  | { outcome: 'user'; user: User }
  /** Demo mode: no credentials, or a username nobody registered. */
  | { outcome: 'anonymous'; subject: string }
  | { outcome: 'refused'; reason: string };

export interface Authenticator {
  authenticate(credentials: Credentials | undefined): Promise<Authentication>;
}

const WRONG_CREDENTIALS = 'Invalid username or password';

export function createAuthenticator({ userStore, mode }: { userStore: UserStore; mode: AuthMode }): Authenticator {
  return {
    async authenticate(credentials) {
      if (credentials === undefined) {
        return mode === 'demo' ? { outcome: 'anonymous', subject: DEMO_SUBJECT } : { outcome: 'refused', reason: 'Credentials are required' };
      }
      const user = await userStore.findByUsername(credentials.username);
      if (user === undefined) {
        if (mode === 'demo') return { outcome: 'anonymous', subject: credentials.username };
        // Costs what a real check costs, so that timing does not reveal which usernames exist.
        await verifyAgainstDecoy(credentials.password);
        return { outcome: 'refused', reason: WRONG_CREDENTIALS };
      }
      return (await verifyPassword(user.passwordHash, credentials.password))
        ? { outcome: 'user', user }
        : { outcome: 'refused', reason: WRONG_CREDENTIALS };
    },
  };
}
