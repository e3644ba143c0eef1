/** Reads DATABASE_URL: which database the server keeps its keys and users in. */

/** An embedded SQLite file (or `:memory:`), or a PostgreSQL server shared by several instances. */
export type DatabaseLocation = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string };

export const IN_MEMORY_DATABASE = ':memory:';

/** PostgreSQL: the most connections one process opens, unless DATABASE_POOL_SIZE says otherwise. */
export const DEFAULT_POOL_SIZE = 10;

/** DATABASE_URL names something this server cannot use. */
export class DatabaseUrlError extends Error {
  override readonly name = 'DatabaseUrlError';
  readonly code = 'ERR_JWKS_DATABASE_URL';
}

/**
 * `postgres://…` or `postgresql://…` is PostgreSQL. A plain path is a SQLite file, and so is a
 * `sqlite:` URL: `sqlite:keys.db` and `sqlite://keys.db` are relative, `sqlite:///var/keys.db`
 * is absolute, `sqlite::memory:` is a throwaway database. Any other scheme is refused rather
 * than taken for a file name, which would silently start an empty key store.
 */
export function parseDatabaseUrl(raw: string): DatabaseLocation {
  const value = raw.trim();
  if (value === '') throw new DatabaseUrlError('must not be empty');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (!URL.canParse(value)) throw new DatabaseUrlError('is not a valid PostgreSQL URL');
    return { dialect: 'postgres', url: value };
  }
  if (scheme === 'sqlite') {
    const path = value.slice('sqlite:'.length).replace(/^\/\//, '');
    if (path === '') throw new DatabaseUrlError('names no SQLite file');
    return { dialect: 'sqlite', path };
  }
  // One letter before the colon is a Windows drive, not a scheme.
  if (scheme !== undefined && scheme.length > 1 && value.slice(scheme.length).startsWith('://')) {
    throw new DatabaseUrlError(`must be a SQLite path, a sqlite: URL or a postgres:// URL; ${scheme}:// is not supported`);
  }
  return { dialect: 'sqlite', path: value };
}

/** The location for messages and logs: a PostgreSQL URL without its password. */
export function describeDatabaseLocation(location: DatabaseLocation): string {
  if (location.dialect === 'sqlite') return location.path;
  const url = new URL(location.url);
  if (url.password !== '') url.password = '***';
  if (url.searchParams.has('password')) url.searchParams.set('password', '***');
  return url.toString();
}
