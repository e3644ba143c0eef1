/** Reads the standalone server's configuration from the environment, once, and validates it. */

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServerConfig {
  host: string;
  port: number;
  /** Path of the SQLite file; `:memory:` for a throwaway database. */
  databasePath: string;
  keyTtlSeconds: number;
  tokenTtlSeconds: number;
  logLevel: LogLevel;
}

export const DEFAULT_DATABASE_PATH = 'totally_not_my_privateKeys.db';
export const DEFAULT_KEY_TTL_SECONDS = 3600;
export const DEFAULT_TOKEN_TTL_SECONDS = 900;

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

function readDatabasePath(env: Environment): string {
  const raw = env.DATABASE_URL?.trim();
  if (raw === undefined || raw === '') return DEFAULT_DATABASE_PATH;
  // Only an embedded SQLite file is supported; a URL such as postgres://... would otherwise be
  // taken for a file name and silently create a new, empty key store.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1];
  if (scheme !== undefined) {
    throw new ConfigError('DATABASE_URL', `must be the path of a SQLite file; ${scheme}:// URLs are not supported`);
  }
  return raw;
}

function readLogLevel(env: Environment): LogLevel {
  const raw = env.LOG_LEVEL?.trim();
  if (raw === undefined || raw === '') return 'info';
  const level = LOG_LEVELS.find((candidate) => candidate === raw);
  if (level === undefined) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(raw)})`);
  }
  return level;
}

/** Parses and validates the configuration; throws a {@link ConfigError} on the first bad variable. */
export function loadConfig(env: Environment = process.env): ServerConfig {
  const keyTtlSeconds = readInteger(env, 'KEY_TTL', DEFAULT_KEY_TTL_SECONDS, 1, 10 * 365 * 24 * 3600);
  const tokenTtlSeconds = readInteger(env, 'TOKEN_TTL', Math.min(DEFAULT_TOKEN_TTL_SECONDS, keyTtlSeconds), 1, keyTtlSeconds);
  const host = env.HOST?.trim();
  return {
    host: host === undefined || host === '' ? '0.0.0.0' : host,
    port: readInteger(env, 'PORT', 8080, 0, 65535),
    databasePath: readDatabasePath(env),
    keyTtlSeconds,
    tokenTtlSeconds,
    logLevel: readLogLevel(env),
  };
}
