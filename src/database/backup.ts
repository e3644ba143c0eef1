/**
 * A consistent copy of a live SQLite database, through SQLite's online backup API: every page is
 * copied in one step, inside one read transaction, so the copy is the database as of one moment.
 * In WAL mode a reader never blocks the writers, so a server on the same file goes on issuing
 * tokens meanwhile (copying in several steps would instead start over each time the server
 * committed, and under load might never finish).
 */
import { existsSync, rmSync } from 'node:fs';
import { loadSqliteDriver } from './sqlite-driver.js';

/** The copy could not be made, or is not sound; nothing is left at the destination. */
export class BackupError extends Error {
  override readonly name = 'BackupError';
  readonly code = 'ERR_JWKS_BACKUP';
}

export interface BackupReport {
  /** Pages copied (of the source's page size). */
  pages: number;
}

// better-sqlite3 copies this many pages per step at most: all of any database this service keeps.
const ALL_PAGES = 0x7fffffff;

/** Copies the SQLite database at `sourcePath` to a new file at `destinationPath` and checks the copy's integrity. */
export async function backupSqlite(sourcePath: string, destinationPath: string): Promise<BackupReport> {
  if (existsSync(destinationPath)) throw new BackupError(`${destinationPath} exists already; a backup is written to a new file`);
  const SQLite = await loadSqliteDriver();
  const source = new SQLite(sourcePath, { fileMustExist: true });
  try {
    const { totalPages } = await source.backup(destinationPath, {
      // Called after the first step, which copies nothing: the rest then goes in one.
      progress: () => ALL_PAGES,
    });
    const copy = new SQLite(destinationPath, { fileMustExist: true });
    try {
      const integrity: unknown = copy.pragma('integrity_check', { simple: true });
      if (integrity !== 'ok') throw new BackupError(`the copy failed SQLite's integrity check: ${String(integrity)}`);
    } finally {
      copy.close();
    }
    return { pages: totalPages };
  } catch (error) {
    for (const file of [destinationPath, `${destinationPath}-wal`, `${destinationPath}-shm`]) rmSync(file, { force: true });
    throw error instanceof BackupError ? error : new BackupError(`cannot back up ${sourcePath}`, { cause: error });
  } finally {
    source.close();
  }
}
