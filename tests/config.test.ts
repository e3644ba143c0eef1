import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_DATABASE_PATH, loadConfig } from '../src/server/config.js';

function configErrorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe('loadConfig', () => {
  it('defaults to port 8080 on every interface and the course database file', () => {
    expect(loadConfig({})).toEqual({
      host: '0.0.0.0',
      port: 8080,
      databaseUrl: DEFAULT_DATABASE_PATH,
      databasePoolSize: 10,
      workers: 1,
      keyTtlSeconds: 3600,
      tokenTtlSeconds: 900,
      jwksMaxAgeSeconds: 300,
      expiredKeyRetentionSeconds: 86400,
      algorithms: ['RS256'],
      logLevel: 'info',
      issuer: 'http://localhost:8080',
      audience: undefined,
      authMode: 'demo',
      oauthPasswordGrant: false,
      keyEncryptionSecret: undefined,
      trustProxy: false,
      rateLimit: { max: 10, windowMs: 1000 },
      metrics: { enabled: true, port: undefined },
    });
    expect(DEFAULT_DATABASE_PATH).toBe('totally_not_my_privateKeys.db');
  });

  it('reads every variable', () => {
    expect(
      loadConfig({
        HOST: '127.0.0.1',
        PORT: '9090',
        DATABASE_URL: 'postgres://jwks:secret@db.internal:5432/jwks',
        DATABASE_POOL_SIZE: '20',
        WORKERS: '4',
        REDIS_URL: 'redis://cache.internal:6379',
        KEY_TTL: '7200',
        TOKEN_TTL: '60',
        JWKS_MAX_AGE: '900',
        EXPIRED_KEY_RETENTION: '0',
        ALGORITHMS: 'ES256, RS256,EdDSA,ES256',
        LOG_LEVEL: 'warn',
        ISSUER: 'https://id.example.com',
        AUDIENCE: 'https://api.example.com',
        AUTH_MODE: 'strict',
        OAUTH_PASSWORD_GRANT: 'true',
        NOT_MY_KEY: 'correct horse battery staple',
        TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
        RATE_LIMIT_MAX: '5',
        RATE_LIMIT_WINDOW_MS: '2000',
        METRICS: 'true',
        METRICS_PORT: '9464',
      }),
    ).toEqual({
      host: '127.0.0.1',
      port: 9090,
      databaseUrl: 'postgres://jwks:secret@db.internal:5432/jwks',
      databasePoolSize: 20,
      workers: 4,
      keyTtlSeconds: 7200,
      tokenTtlSeconds: 60,
      jwksMaxAgeSeconds: 900,
      expiredKeyRetentionSeconds: 0,
      algorithms: ['ES256', 'RS256', 'EdDSA'],
      logLevel: 'warn',
      issuer: 'https://id.example.com',
      audience: 'https://api.example.com',
      authMode: 'strict',
      oauthPasswordGrant: true,
      keyEncryptionSecret: 'correct horse battery staple',
      trustProxy: '10.0.0.0/8,127.0.0.1',
      rateLimit: { max: 5, windowMs: 2000, redisUrl: 'redis://cache.internal:6379' },
      metrics: { enabled: true, port: 9464 },
    });
  });

  it('turns metrics off with METRICS=false, and refuses a METRICS_PORT that is the service port or no port', () => {
    expect(loadConfig({ METRICS: 'false' }).metrics).toEqual({ enabled: false, port: undefined });
    expect(() => loadConfig({ METRICS: 'no' })).toThrow('METRICS must be one of true, false (got "no")');
    expect(() => loadConfig({ PORT: '9000', METRICS_PORT: '9000' })).toThrow('METRICS_PORT (9000) must differ from PORT: it is a listener of its own');
    expect(() => loadConfig({ METRICS_PORT: '70000' })).toThrow('METRICS_PORT must be a whole number from 0 to 65535 (got "70000")');
    // Both on free ports chosen by the system, as tests start it.
    expect(loadConfig({ PORT: '0', METRICS_PORT: '0' }).metrics).toEqual({ enabled: true, port: 0 });
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', HOST: ' ', DATABASE_URL: '', LOG_LEVEL: '' })).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: DEFAULT_DATABASE_PATH,
      logLevel: 'info',
    });
  });

  it('derives the issuer from where the server listens', () => {
    expect(loadConfig({ HOST: '127.0.0.1', PORT: '3000' }).issuer).toBe('http://127.0.0.1:3000');
    expect(loadConfig({ HOST: '::', PORT: '3000' }).issuer).toBe('http://localhost:3000');
    expect(loadConfig({ HOST: '::1' }).issuer).toBe('http://[::1]:8080');
  });

  it('turns rate limiting off with RATE_LIMIT_MAX=0', () => {
    expect(loadConfig({ RATE_LIMIT_MAX: '0' }).rateLimit).toBe(false);
  });

  it.each([
    ['true', true],
    ['false', false],
    ['192.168.1.10', '192.168.1.10'],
    ['::1, fd00::/8', '::1,fd00::/8'],
  ])('reads TRUST_PROXY=%s', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toBe(expected);
  });

  it('treats an empty NOT_MY_KEY as unset', () => {
    expect(loadConfig({ NOT_MY_KEY: '' }).keyEncryptionSecret).toBeUndefined();
  });

  it('keeps token lifetimes and the JWKS max-age within a short key lifetime by default', () => {
    expect(loadConfig({ KEY_TTL: '120' })).toMatchObject({ tokenTtlSeconds: 120, jwksMaxAgeSeconds: 120 });
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['PORT', '0x50'],
    ['KEY_TTL', '0'],
    ['KEY_TTL', 'an hour'],
    ['TOKEN_TTL', '0'],
    ['JWKS_MAX_AGE', '-5'],
    ['EXPIRED_KEY_RETENTION', 'a day'],
    ['ALGORITHMS', 'HS256'],
    ['ALGORITHMS', 'RS256,none'],
    ['ALGORITHMS', ','],
    ['AUTH_MODE', 'lenient'],
    ['OAUTH_PASSWORD_GRANT', 'yes'],
    ['ISSUER', 'not a url'],
    ['TRUST_PROXY', '2'],
    ['TRUST_PROXY', '10.0.0.0/33'],
    ['TRUST_PROXY', 'proxy.internal'],
    ['RATE_LIMIT_MAX', '-1'],
    ['RATE_LIMIT_WINDOW_MS', '0'],
  ])('refuses %s=%s, naming the variable', (variable, value) => {
    const error = configErrorOf({ [variable]: value });
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
    expect(error.message).toContain(JSON.stringify(value));
  });

  it.each([
    ['TOKEN_TTL', { KEY_TTL: '600', TOKEN_TTL: '601' }],
    ['JWKS_MAX_AGE', { KEY_TTL: '600', JWKS_MAX_AGE: '601' }],
  ])('refuses a %s longer than the key lifetime, saying why', (variable, env) => {
    const error = configErrorOf(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(new RegExp(`^${variable} \\(601\\) must not exceed KEY_TTL \\(600\\): .+`));
  });

  it.each(['mysql://db.internal/keys', 'sqlite:', 'postgres://db.internal:port/keys'])(
    'refuses the database URL %s rather than creating a file named after it',
    (url) => {
      const error = configErrorOf({ DATABASE_URL: url });
      expect(error.variable).toBe('DATABASE_URL');
      expect(error.message).toMatch(/^DATABASE_URL .+/);
    },
  );

  it('refuses several workers on a database each would have to itself', () => {
    const error = configErrorOf({ WORKERS: '2', DATABASE_URL: 'sqlite::memory:' });
    expect(error.variable).toBe('WORKERS');
    expect(error.message).toContain('share');
    expect(loadConfig({ WORKERS: '2', DATABASE_URL: 'keys.db' }).workers).toBe(2);
  });

  it.each(['cache.internal:6379', 'http://cache.internal', 'redis://'])('refuses the REDIS_URL %s', (url) => {
    expect(configErrorOf({ REDIS_URL: url }).variable).toBe('REDIS_URL');
  });

  it('refuses an unknown log level', () => {
    const error = configErrorOf({ LOG_LEVEL: 'verbose' });
    expect(error.variable).toBe('LOG_LEVEL');
    expect(error.message).toContain('info');
  });
});
