/**
 * Tells a database that is unavailable for now (unreachable, shutting down, locked past its
 * time-out, out of space) from one that refused a query, and keeps the log of an outage to one
 * line at its start and one at its end, however many requests meet it.
 */
import type { FastifyBaseLogger } from 'fastify';
import { errorCode } from '../common/error-code.js';

/** What a 503 for an unavailable database asks the client to wait before trying again. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

// SQLite's primary result codes (extended ones start with them: SQLITE_IOERR_WRITE, SQLITE_BUSY_TIMEOUT …).
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|NOMEM|READONLY|PROTOCOL)/;

// PostgreSQL's SQLSTATEs: the connection exceptions (class 08 but 08P01, a protocol violation,
// which is a bug of ours), insufficient resources (53: disk full, out of memory, too many
// connections), system errors (58), shutting down or starting up (57P01-57P03), a lock wait past
// lock_timeout (55P03), a standby taking writes after a failover (25006).
const POSTGRES_UNAVAILABLE = /^080(00|01|03|04|06|07)$|^(53|58)...$|^57P0[123]$|^55P03$|^25006$/;

// Node's network errors, as pg passes them on when it cannot reach the server.
const NETWORK_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

// pg's own errors carry no code, only these words: the server went away, or no connection came in time.
const PG_CONNECTION_LOST = /^Connection terminated|^timeout exceeded when trying to connect|^Client has encountered a connection error|^Client was closed/;

/** A PostgreSQL server reached through a Unix socket removes the socket when it stops. */
const isMissingSocket = (error: Error) => errorCode(error) === 'ENOENT' && 'syscall' in error && error.syscall === 'connect';

/** Whether `error`, or an error it was caused by, says the database is unavailable for now rather than that the query was wrong. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    const code = errorCode(current);
    if (typeof code === 'string' && (SQLITE_UNAVAILABLE.test(code) || POSTGRES_UNAVAILABLE.test(code) || NETWORK_UNAVAILABLE.has(code))) return true;
    if (PG_CONNECTION_LOST.test(current.message) || isMissingSocket(current)) return true;
  }
  return false;
}

export interface OutageLog {
  /** Whether an outage is going on. */
  readonly active: boolean;
  /** Something (a route, the key sync) failed because the database is unavailable: the first failure of an outage is logged, the others counted. */
  failed(error: unknown, source: string): void;
  /** {@link failed} if `error` says the database is unavailable (and true), else false: the caller logs it as it would any failure. */
  failedIfUnavailable(error: unknown, source: string): boolean;
  /** Something succeeded with the database: if it failed during the outage, the outage is over, and that is logged. */
  succeeded(source: string): void;
}

/**
 * A failure this long after the last one starts a new outage: the one before may have ended
 * unseen, when what failed during it was not tried again.
 */
export const OUTAGE_QUIET_MS = 60_000;

/**
 * An outage begins with the first failure and ends when something that failed during it succeeds
 * again. Not anything: a full disk still lets reads through, so a route that only reads, or a 401
 * after reading a user, would end an outage that goes on for every write.
 */
export interface OutageLogOptions {
  /** Called when an outage begins, after its line is logged. */
  onStart?: () => void;
  /** Called when it ends. */
  onEnd?: () => void;
  now?: () => number;
}

export function createOutageLog(log: FastifyBaseLogger, { onStart, onEnd, now = Date.now }: OutageLogOptions = {}): OutageLog {
  let outage: { since: number; lastFailure: number; failedSources: Set<string>; failures: number } | undefined;
  const failed = (error: unknown, source: string): void => {
    const at = now();
    if (outage !== undefined && at - outage.lastFailure < OUTAGE_QUIET_MS) {
      outage.failures += 1;
      outage.lastFailure = at;
      outage.failedSources.add(source);
      return;
    }
    outage = { since: at, lastFailure: at, failedSources: new Set([source]), failures: 1 };
    log.error({ err: error, source }, `the database is unavailable: requests that need it are answered 503 (Retry-After: ${String(DATABASE_RETRY_AFTER_SECONDS)}) until it is back`);
    onStart?.();
  };
  return {
    get active() {
      return outage !== undefined;
    },
    failed,
    failedIfUnavailable(error, source) {
      if (!isDatabaseUnavailable(error)) return false;
      failed(error, source);
      return true;
    },
    succeeded(source) {
      if (!outage?.failedSources.has(source)) return;
      log.warn({ outageMs: now() - outage.since, failures: outage.failures, source }, 'the database is available again');
      outage = undefined;
      onEnd?.();
    },
  };
}
