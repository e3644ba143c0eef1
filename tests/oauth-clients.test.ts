import { describe, expect, it } from 'vitest';
import { generateClientSecret, secretDigest, secretMatches } from '../src/oauth/client-secrets.js';
import { createClientRegistry } from '../src/oauth/client-registry.js';
import { createClientStore, DuplicateClientError } from '../src/oauth/client-store.js';
import { InvalidClientSettingsError, validateClient } from '../src/oauth/clients.js';
import { formatScope, InvalidScopeError, parseScope, scopesBeyond } from '../src/oauth/scopes.js';
import { expectJsonError, openTestDatabase, readyApp } from './helpers.js';

const LONG_SECRET = 's'.repeat(43);

describe('client secrets', () => {
  it('are 256 random bits in base64url, matched against their digest only', () => {
    const secret = generateClientSecret();
    expect(secret).toMatch(/^[\w-]{43}$/);
    expect(generateClientSecret()).not.toBe(secret);
    const digest = secretDigest(secret);
    expect(digest).toHaveLength(32);
    expect(secretMatches(digest, secret)).toBe(true);
    expect(secretMatches(digest, `${secret}x`)).toBe(false);
    expect(secretMatches(Buffer.alloc(16), secret)).toBe(false);
  });
});

describe('scopes', () => {
  it('are space-separated scope tokens, each once', () => {
    expect(parseScope('  read write read  ')).toEqual(['read', 'write']);
    expect(parseScope('')).toEqual([]);
    expect(parseScope('orders:read https://api.example/x')).toEqual(['orders:read', 'https://api.example/x']);
    for (const malformed of ['a"b', 'a\\b', 'tab\there', 'é']) expect(() => parseScope(malformed)).toThrow(InvalidScopeError);
    expect(scopesBeyond(['a', 'b', 'c'], ['b'])).toEqual(['a', 'c']);
    expect(formatScope(['a', 'b'])).toBe('a b');
  });
});

describe('validateClient', () => {
  it('puts the settings in their stored form, with client_credentials as the default grant', () => {
    expect(validateClient('svc-1.a_b~c', {})).toEqual({ clientId: 'svc-1.a_b~c', scopes: [], grantTypes: ['client_credentials'], audience: undefined, extraClaims: {} });
    expect(validateClient('svc', { scopes: ['b a', 'a'], grantTypes: ['password', 'client_credentials'], audience: 'urn:example:api', extraClaims: { tenant: 'x' } })).toEqual({
      clientId: 'svc',
      scopes: ['b', 'a'],
      grantTypes: ['client_credentials', 'password'],
      audience: 'urn:example:api',
      extraClaims: { tenant: 'x' },
    });
  });

  it.each([
    ['an id with other characters', 'a b', {}],
    ['an empty id', '', {}],
    ['an id over 128 characters', 'a'.repeat(129), {}],
    ['a malformed scope', 'svc', { scopes: ['"quoted"'] }],
    ['an unknown grant', 'svc', { grantTypes: ['authorization_code'] }],
    ['no grant at all', 'svc', { grantTypes: [] }],
    ['an empty audience', 'svc', { audience: '' }],
    ['an audience with a space', 'svc', { audience: 'my api' }],
    ['an audience with a colon that is no URI', 'svc', { audience: ':nope' }],
    ['an audience over 2048 characters', 'svc', { audience: `https://a.example/${'a'.repeat(2048)}` }],
    ['claims that are an array', 'svc', { extraClaims: ['a'] }],
    ['claims that are null', 'svc', { extraClaims: null }],
    ['claims that are a string', 'svc', { extraClaims: 'tenant' }],
    ['claims that name registered ones', 'svc', { extraClaims: { sub: 'admin', tenant: 'x' } }],
    ['claims over 4 KiB', 'svc', { extraClaims: { big: 'x'.repeat(4096) } }],
  ])('refuses %s', (_case, clientId, settings) => {
    expect(() => validateClient(clientId, settings as never)).toThrow(InvalidClientSettingsError);
  });
});

describe('the client store', () => {
  it('registers a client once, lists it without its secret, and never reuses a removed id', async () => {
    const store = createClientStore(await openTestDatabase());
    const secret = await store.add('svc', { scopes: ['read'], audience: 'https://api.example', extraClaims: { tenant: 'x' }, grantTypes: ['client_credentials', 'password'] });
    await expect(store.add('svc', {})).rejects.toThrow(DuplicateClientError);
    const [listed] = await store.list();
    expect(listed).toEqual({
      clientId: 'svc',
      scopes: ['read'],
      grantTypes: ['client_credentials', 'password'],
      audience: 'https://api.example',
      extraClaims: { tenant: 'x' },
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as unknown,
      disabledAt: null,
    });
    expect(JSON.stringify(listed)).not.toContain(secret);

    expect(await store.remove('svc')).toBe('removed');
    expect(await store.remove('svc')).toBe('already-removed');
    expect(await store.remove('nobody')).toBe('not-found');
    expect(await store.findActive('svc')).toBeUndefined();
    expect((await store.list())[0]?.disabledAt).toEqual(expect.any(String));
    await expect(store.add('svc', {})).rejects.toThrow(DuplicateClientError);
  });

  it('replaces a secret at once, for active clients only', async () => {
    const store = createClientStore(await openTestDatabase());
    const old = await store.add('svc', {});
    const replacement = await store.rotateSecret('svc');
    expect(replacement).toMatch(/^[\w-]{43}$/);
    const stored = await store.findActive('svc');
    expect(secretMatches(stored?.secretDigest ?? Buffer.alloc(0), replacement ?? '')).toBe(true);
    expect(secretMatches(stored?.secretDigest ?? Buffer.alloc(0), old)).toBe(false);
    expect(await store.rotateSecret('nobody')).toBeUndefined();
    await store.remove('svc');
    expect(await store.rotateSecret('svc')).toBeUndefined();
  });

  it('refuses settings it cannot store, writing nothing', async () => {
    const store = createClientStore(await openTestDatabase());
    await expect(store.add('bad id', {})).rejects.toThrow(InvalidClientSettingsError);
    expect(await store.list()).toEqual([]);
  });
});

describe('the client registry', () => {
  it('authenticates clients registered in code first, then those in the database', async () => {
    const store = createClientStore(await openTestDatabase());
    const storedSecret = await store.add('stored', { scopes: ['db'] });
    await store.add('both', { scopes: ['db-only'] });
    const registry = createClientRegistry({ store, registeredClients: [{ clientId: 'both', clientSecret: LONG_SECRET, scopes: ['code'] }] });
    const basic = { method: 'client_secret_basic' } as const;
    expect(await registry.authenticate({ ...basic, clientId: 'both', clientSecret: LONG_SECRET })).toMatchObject({ scopes: ['code'] });
    expect(await registry.authenticate({ ...basic, clientId: 'stored', clientSecret: storedSecret })).toMatchObject({ scopes: ['db'] });
    await expect(registry.authenticate({ ...basic, clientId: 'nobody', clientSecret: LONG_SECRET })).rejects.toMatchObject({ oauthCode: 'invalid_client', basicAttempted: true });
    await expect(registry.authenticate({ method: 'client_secret_post', clientId: 'stored', clientSecret: 'wrong' })).rejects.toMatchObject({ oauthCode: 'invalid_client', basicAttempted: false });
    expect(await registry.isActive('both')).toBe(true);
    expect(await registry.isActive('nobody')).toBe(false);
    expect(await registry.scopesInUse()).toEqual(['code', 'db', 'db-only']);
  });

  it('refuses clients in code with short secrets or the same id twice', async () => {
    const store = createClientStore(await openTestDatabase());
    expect(() => createClientRegistry({ store, registeredClients: [{ clientId: 'a', clientSecret: 'short' }] })).toThrow(/at least 43 characters/);
    const twice = [
      { clientId: 'a', clientSecret: LONG_SECRET },
      { clientId: 'a', clientSecret: LONG_SECRET },
    ];
    expect(() => createClientRegistry({ store, registeredClients: twice })).toThrow(/registered twice/);
  });
});

describe('client ids and usernames', () => {
  // A client's own tokens carry its id in `sub`, as password-grant tokens carry the username.
  it('never name the same subject, in any case, whichever came first', async () => {
    const app = await readyApp({ oauth: { clients: [{ clientId: 'In-Code', clientSecret: LONG_SECRET }] } });
    await app.inject({ method: 'POST', url: '/register', payload: { username: 'alice', email: 'alice@example.com' } });
    await expect(app.clientStore.add('Alice', {})).rejects.toThrow(/registered user's name/);
    await app.clientStore.add('billing', {});
    await app.clientStore.add('gone', {});
    await app.clientStore.remove('gone');
    for (const username of ['billing', 'BILLING', 'gone', 'in-code']) {
      const response = await app.inject({ method: 'POST', url: '/register', payload: { username, email: `${username}@example.com` } });
      expect(expectJsonError(response, 409)).toBe("That username is an OAuth client's id");
    }
    expect(await app.clientRegistry.isTaken('nobody')).toBe(false);
    expect(await app.clientStore.isTaken('a\u0000b')).toBe(false);
  });
});
