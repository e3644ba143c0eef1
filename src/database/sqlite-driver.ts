/** Chooses the better-sqlite3 build that is safe on the running Node.js. */
import type BetterSqlite3 from 'better-sqlite3';
import { errorCode } from '../common/error-code.js';

export type SqliteDriver = typeof BetterSqlite3;

let driver: Promise<SqliteDriver> | undefined;

/**
 * better-sqlite3 12 is the last release that builds on Node 20, and on Node 24.19 and later it
 * aborts the process (its statements' destructors trip `RemoveEnvironmentCleanupHook`).
 * Release 13, built on Node-API, does not, but needs Node 22: npm installs it, as the optional
 * alias `better-sqlite3-13`, only where it can run, and it is preferred wherever it is there.
 */
export function loadSqliteDriver(): Promise<SqliteDriver> {
  driver ??= import('better-sqlite3-13').then(
    (module) => module.default,
    async (error: unknown) => {
      if (errorCode(error) !== 'ERR_MODULE_NOT_FOUND') throw error;
      return (await import('better-sqlite3')).default;
    },
  );
  return driver;
}
