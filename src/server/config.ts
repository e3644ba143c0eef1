/** Reads the standalone server's configuration from the environment, once, and validates it. */
import { isIP } from 'node:net';
import { DEFAULT_ALGORITHMS, isSigningAlgorithm, SIGNING_ALGORITHMS, type AlgorithmList } from '../keys/algorithms.js';
import { AUTH_MODES, type AuthMode } from '../users/auth-modes.js';
import { DatabaseUrlError, DEFAULT_POOL_SIZE, IN_MEMORY_DATABASE, parseDatabaseUrl } from '../database/location.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServerConfig {
  host: string;
  port: number;
  /** A SQLite path or `sqlite:` URL (`:memory:` for a throwaway database), or a `postgres://` URL. */
  databaseUrl: string;
  /** PostgreSQL: the most connections each process opens. */
  databasePoolSize: number;
  /** How many server processes share the port; 1 runs the server in this process. */
  workers: number;
  /** How long each key signs. */
  keyTtlSeconds: number;
  tokenTtlSeconds: number;
  /** Cache-Control max-age of the key endpoints, and the least time a key is published before it signs. */
  jwksMaxAgeSeconds: number;
  /** How long expired and revoked keys are kept before they are pruned. */
  expiredKeyRetentionSeconds: number;
  /** The algorithms tokens are signed with, the default first. */
  algorithms: AlgorithmList;
  logLevel: LogLevel;
  /** The `iss` of every token, and what `/users/me` requires. */
  issuer: string;
  /** The `aud` of every token, and what `/users/me` requires; none when unset. */
  audience: string | undefined;
  authMode: AuthMode;
  /** OAUTH_PASSWORD_GRANT: whether POST /oauth/token takes `grant_type=password`. */
  oauthPasswordGrant: boolean;
  /** NOT_MY_KEY: the secret private keys are encrypted with at rest; unset keeps them PEM. */
  keyEncryptionSecret: string | undefined;
  /** Fastify's trustProxy: whether, and which, proxies' X-Forwarded-For to believe. */
  trustProxy: boolean | string;
  /** `false` turns rate limiting off. */
  rateLimit: RateLimitSettings | false;
  metrics: MetricsConfig;
}

export interface MetricsConfig {
  /** METRICS: whether Prometheus metrics are collected and served at all. */
  enabled: boolean;
  /** METRICS_PORT: serve GET /metrics on this port (on HOST) instead of the service's port. */
  port: number | undefined;
}

export interface RateLimitSettings {
  /** Requests per client IP per window. */
  max: number;
  windowMs: number;
  /** A Redis server that counts for every instance; without one, each process counts alone. */
  redisUrl?: string | undefined;
}

export const DEFAULT_RATE_LIMIT: RateLimitSettings = { max: 10, windowMs: 1000 };

export const DEFAULT_DATABASE_PATH = 'totally_not_my_privateKeys.db';
export const DEFAULT_KEY_TTL_SECONDS = 3600;
export const DEFAULT_TOKEN_TTL_SECONDS = 900;
export const DEFAULT_JWKS_MAX_AGE_SECONDS = 300;
export const DEFAULT_EXPIRED_KEY_RETENTION_SECONDS = 24 * 3600;

const TEN_YEARS_SECONDS = 10 * 365 * 24 * 3600;

/** A configuration problem, naming the environment variable at fault. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ERR_JWKS_CONFIG';

  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
  }
}

type Environment = Readonly<Record<string, string | undefined>>;

function readInteger(env: Environment, variable: string, fallback: number, min: number, max: number): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(variable, `must be a whole number from ${String(min)} to ${String(max)} (got ${JSON.stringify(raw)})`);
  }
  return value;
}

/** Refuses a value that only makes sense below another variable's, saying why. */
function requireAtMost(variable: string, value: number, limitVariable: string, limit: number, reason: string): number {
  if (value > limit) throw new ConfigError(variable, `(${String(value)}) must not exceed ${limitVariable} (${String(limit)}): ${reason}`);
  return value;
}

function readAlgorithms(env: Environment): AlgorithmList {
  const raw = env.ALGORITHMS?.trim();
  if (raw === undefined || raw === '') return DEFAULT_ALGORITHMS;
  const names = [...new Set(raw.split(',').map((name) => name.trim()))];
  const unknown = names.filter((name) => !isSigningAlgorithm(name));
  const [first, ...rest] = names.filter(isSigningAlgorithm);
  if (unknown.length > 0 || first === undefined) {
    throw new ConfigError('ALGORITHMS', `must be a comma-separated list of ${SIGNING_ALGORITHMS.join(', ')} (got ${JSON.stringify(raw)})`);
  }
  return [first, ...rest];
}

function readAudience(env: Environment): string | undefined {
  const raw = env.AUDIENCE?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

function readDatabaseUrl(env: Environment): string {
  const raw = env.DATABASE_URL?.trim();
  if (raw === undefined || raw === '') return DEFAULT_DATABASE_PATH;
  try {
    parseDatabaseUrl(raw);
  } catch (error) {
    if (error instanceof DatabaseUrlError) throw new ConfigError('DATABASE_URL', error.message);
    throw error;
  }
  return raw;
}

/** Several processes must share one database, or each would issue with keys the others never publish. */
function requireSharedDatabase(workers: number, databaseUrl: string): number {
  const location = parseDatabaseUrl(databaseUrl);
  if (workers > 1 && location.dialect === 'sqlite' && location.path === IN_MEMORY_DATABASE) {
    throw new ConfigError('WORKERS', `(${String(workers)}) needs a database the workers share; ${databaseUrl} is private to each process`);
  }
  return workers;
}

function readRedisUrl(env: Environment): string | undefined {
  const raw = env.REDIS_URL?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (!/^rediss?:\/\//i.test(raw) || !URL.canParse(raw) || new URL(raw).hostname === '') {
    throw new ConfigError('REDIS_URL', 'must be a redis:// or rediss:// URL with a host');
  }
  return raw;
}

function readChoice<T extends string>(env: Environment, variable: string, choices: readonly T[], fallback: T): T {
  const raw = env[variable]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const choice = choices.find((candidate) => candidate === raw);
  if (choice === undefined) {
    throw new ConfigError(variable, `must be one of ${choices.join(', ')} (got ${JSON.stringify(raw)})`);
  }
  return choice;
}

function isAddressOrCidr(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}

function readTrustProxy(env: Environment): boolean | string {
  const raw = env.TRUST_PROXY?.trim();
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  const entries = raw.split(',').map((entry) => entry.trim());
  if (!entries.every(isAddressOrCidr)) {
    throw new ConfigError('TRUST_PROXY', `must be true, false, or a comma-separated list of IP addresses and CIDR ranges (got ${JSON.stringify(raw)})`);
  }
  return entries.join(',');
}

function readIssuer(env: Environment, host: string, port: number): string {
  const raw = env.ISSUER?.trim();
  if (raw === undefined || raw === '') {
    const publicHost = host === '0.0.0.0' || host === '::' ? 'localhost' : isIP(host) === 6 ? `[${host}]` : host;
    return `http://${publicHost}:${String(port)}`;
  }
  if (!URL.canParse(raw)) throw new ConfigError('ISSUER', `must be a URL (got ${JSON.stringify(raw)})`);
  return raw;
}

function readRateLimit(env: Environment): RateLimitSettings | false {
  const max = readInteger(env, 'RATE_LIMIT_MAX', DEFAULT_RATE_LIMIT.max, 0, 1_000_000);
  const windowMs = readInteger(env, 'RATE_LIMIT_WINDOW_MS', DEFAULT_RATE_LIMIT.windowMs, 1, 3_600_000);
  const redisUrl = readRedisUrl(env);
  return max === 0 ? false : { max, windowMs, redisUrl };
}

function readMetrics(env: Environment, servicePort: number): MetricsConfig {
  const enabled = readChoice(env, 'METRICS', ['true', 'false'], 'true') === 'true';
  const raw = env.METRICS_PORT?.trim();
  if (raw === undefined || raw === '') return { enabled, port: undefined };
  const port = readInteger(env, 'METRICS_PORT', 0, 0, 65535);
  if (port !== 0 && port === servicePort) throw new ConfigError('METRICS_PORT', `(${String(port)}) must differ from PORT: it is a listener of its own`);
  return { enabled, port };
}

/** Parses and validates the configuration; throws a {@link ConfigError} on the first bad variable. */
export function loadConfig(env: Environment = process.env): ServerConfig {
  const keyTtlSeconds = readInteger(env, 'KEY_TTL', DEFAULT_KEY_TTL_SECONDS, 1, TEN_YEARS_SECONDS);
  const tokenTtlSeconds = requireAtMost(
    'TOKEN_TTL',
    readInteger(env, 'TOKEN_TTL', Math.min(DEFAULT_TOKEN_TTL_SECONDS, keyTtlSeconds), 1, TEN_YEARS_SECONDS),
    'KEY_TTL',
    keyTtlSeconds,
    'a retired key stays published a token lifetime, and the JWKS should hold at most three keys per algorithm',
  );
  const jwksMaxAgeSeconds = requireAtMost(
    'JWKS_MAX_AGE',
    readInteger(env, 'JWKS_MAX_AGE', Math.min(DEFAULT_JWKS_MAX_AGE_SECONDS, keyTtlSeconds), 0, TEN_YEARS_SECONDS),
    'KEY_TTL',
    keyTtlSeconds,
    'a successor key is published one key lifetime before it signs, and clients that cached the JWKS must see it by then',
  );
  const rawHost = env.HOST?.trim();
  const host = rawHost === undefined || rawHost === '' ? '0.0.0.0' : rawHost;
  const port = readInteger(env, 'PORT', 8080, 0, 65535);
  const secret = env.NOT_MY_KEY;
  const databaseUrl = readDatabaseUrl(env);
  return {
    host,
    port,
    databaseUrl,
    databasePoolSize: readInteger(env, 'DATABASE_POOL_SIZE', DEFAULT_POOL_SIZE, 1, 1000),
    workers: requireSharedDatabase(readInteger(env, 'WORKERS', 1, 1, 256), databaseUrl),
    keyTtlSeconds,
    tokenTtlSeconds,
    jwksMaxAgeSeconds,
    expiredKeyRetentionSeconds: readInteger(env, 'EXPIRED_KEY_RETENTION', DEFAULT_EXPIRED_KEY_RETENTION_SECONDS, 0, TEN_YEARS_SECONDS),
    algorithms: readAlgorithms(env),
    logLevel: readChoice(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    issuer: readIssuer(env, host, port),
    audience: readAudience(env),
    authMode: readChoice(env, 'AUTH_MODE', AUTH_MODES, 'demo'),
    oauthPasswordGrant: readChoice(env, 'OAUTH_PASSWORD_GRANT', ['true', 'false'], 'false') === 'true',
    keyEncryptionSecret: secret === undefined || secret === '' ? undefined : secret,
    trustProxy: readTrustProxy(env),
    rateLimit: readRateLimit(env),
    metrics: readMetrics(env, port),
  };
}
