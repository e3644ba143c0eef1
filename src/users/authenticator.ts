/** Decides, from the credentials of a `POST /auth`, whom a token is for, or that none is issued. */
import type { AuthMode } from './auth-modes.js';
import type { Credentials } from './basic-credentials.js';
import { generatePassword, hashPassword, verifyPassword } from './passwords.js';
import type { User, UserStore } from './user-store.js';

/** The subject of a demo token requested without a username; no user may register it. */
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

/**
 * In strict mode an unknown username is checked against a decoy hash, made here, so that it
 * costs what a real check costs and response time does not reveal which usernames exist. (Demo
 * mode answers unknown usernames with a token, which reveals that much anyway.)
 */
export async function createAuthenticator({ userStore, mode }: { userStore: UserStore; mode: AuthMode }): Promise<Authenticator> {
  const decoyHash = mode === 'strict' ? await hashPassword(generatePassword()) : undefined;
  return {
    async authenticate(credentials) {
      if (credentials === undefined) {
        return mode === 'demo' ? { outcome: 'anonymous', subject: DEMO_SUBJECT } : { outcome: 'refused', reason: 'Credentials are required' };
      }
      const user = await userStore.findByUsername(credentials.username);
      if (user === undefined) {
        if (decoyHash === undefined) return { outcome: 'anonymous', subject: credentials.username };
        await verifyPassword(decoyHash, credentials.password);
        return { outcome: 'refused', reason: WRONG_CREDENTIALS };
      }
      return (await verifyPassword(user.passwordHash, credentials.password))
        ? { outcome: 'user', user }
        : { outcome: 'refused', reason: WRONG_CREDENTIALS };
    },
  };
}
