/** The modes of `POST /auth`, apart from the authenticator, so that reading the configuration loads no password hashing. */

/**
 * `demo`: anyone gets a token, but a registered user's password is checked.
 * `strict`: only a registered user with the right password gets a token.
 */
export const AUTH_MODES = ['demo', 'strict'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];
