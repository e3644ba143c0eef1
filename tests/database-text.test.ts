/**
 * Names looked up in the database: PostgreSQL's text cannot hold U+0000 and refuses any statement
 * that compares with one, so a name holding it is no one's, on SQLite as on PostgreSQL, not a 500.
 */
import { describe, expect, it } from 'vitest';
import { basic, decodeToken, readyApp } from './helpers.js';
import { tokenFor } from './users-helpers.js';

const NAME_WITH_NUL = 'a\u0000b';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('a name holding U+0000', () => {
  it('is an unknown user at POST /auth and in the password grant', async () => {
    const app = await readyApp({ oauth: { passwordGrant: true } });
    // Demo mode: an unknown username gets a token in its name.
    expect(decodeToken(await tokenFor(app, { payload: { username: NAME_WITH_NUL, password: 'x' } })).claims.sub).toBe(NAME_WITH_NUL);
    const secret = await app.clientStore.add('app', { grantTypes: ['password'] });
    const response = await app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { ...FORM, authorization: basic('app', secret) },
      payload: new URLSearchParams({ grant_type: 'password', username: NAME_WITH_NUL, password: 'x' }).toString(),
    });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it.each([
    ['client_secret_post', {}, `client_id=${encodeURIComponent(NAME_WITH_NUL)}&client_secret=x`],
    ['client_secret_basic, form-encoded', { authorization: basic(encodeURIComponent(NAME_WITH_NUL), 'x') }, ''],
    ['client_secret_basic, as it is', { authorization: basic(NAME_WITH_NUL, 'x') }, ''],
  ])('is an unknown client at the OAuth endpoints (%s)', async (_method, headers, credentials) => {
    const app = await readyApp();
    for (const [url, parameters] of [['/oauth/token', 'grant_type=client_credentials'], ['/oauth/introspect', 'token=x'], ['/oauth/revoke', 'token=x']] as const) {
      const response = await app.inject({ method: 'POST', url, headers: { ...FORM, ...headers }, payload: [parameters, credentials].filter(Boolean).join('&') });
      expect(response.statusCode, `${url}: ${response.body}`).toBe(401);
      expect(response.json()).toMatchObject({ error: 'invalid_client' });
    }
  });
});
