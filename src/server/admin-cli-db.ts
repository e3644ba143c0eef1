/** The admin CLI's `db` commands: a consistent backup of a running server's SQLite database, and a copy into another database. */
import { backupSqlite } from '../database/backup.js';
import { openDatabase } from '../database/connection.js';
import { copyDatabase, type CopyReport } from '../database/copy.js';
import { describeDatabaseLocation, IN_MEMORY_DATABASE, parseDatabaseUrl, type DatabaseLocation, type DatabaseUrlError } from '../database/location.js';
import { EXIT_OK, UsageError, type CommandGroup } from './admin-cli-command.js';

const USAGE = `Database commands:
  backup <file>               a consistent copy of the SQLite database in a new file, safe to
                              take while the server runs (PostgreSQL: use pg_dump)
  copy --to <DATABASE_URL>    copy keys, users, auth logs and OAuth clients into an empty
                              database, SQLite or PostgreSQL, for servers to move to`;

const OPTIONS = { to: { type: 'string' } } as const;

function summarize(report: CopyReport): string {
  const counts: readonly [number, string][] = [
    [report.keys, 'keys'],
    [report.key_encryption, 'key-encryption rows'],
    [report.users, 'users'],
    [report.auth_logs, 'auth logs'],
    [report.oauth_clients, 'OAuth clients'],
    [report.oauth_revocations, 'revoked tokens'],
  ];
  return counts.map(([count, what]) => `${String(count)} ${what}`).join(', ');
}

/** Checked before any database is opened, like every other argument. */
function parseTarget(url: string): DatabaseLocation {
  try {
    return parseDatabaseUrl(url);
  } catch (error) {
    // parseDatabaseUrl throws only DatabaseUrlError, whose message reads after the option's name.
    throw new UsageError(`--to ${(error as DatabaseUrlError).message}`, { cause: error });
  }
}

export const databaseCommands: CommandGroup<typeof OPTIONS> = {
  options: OPTIONS,
  usage: USAGE,
  commands: {
    backup: (options, operands, config) => {
      const [destination, ...rest] = operands;
      if (options.to !== undefined) throw new UsageError('backup takes no --to: it writes the file it is given');
      if (destination === undefined || rest.length > 0) throw new UsageError('backup takes one file to write');
      const location = parseDatabaseUrl(config.databaseUrl);
      if (location.dialect === 'postgres') throw new UsageError('DATABASE_URL is a PostgreSQL database: back it up with pg_dump (or your provider\'s snapshots)');
      if (location.path === IN_MEMORY_DATABASE) throw new UsageError('DATABASE_URL is an in-memory database: there is nothing to back up');
      return async ({ output }) => {
        const { pages } = await backupSqlite(location.path, destination);
        output.out(`${destination}: ${String(pages)} pages, integrity ok`);
        return EXIT_OK;
      };
    },
    copy: (options, operands) => {
      if (operands.length > 0) throw new UsageError('copy takes no operands: name the target with --to <DATABASE_URL>');
      if (options.to === undefined) throw new UsageError('copy needs --to <DATABASE_URL>, the empty database to copy into');
      const target = parseTarget(options.to);
      if (target.dialect === 'sqlite' && target.path === IN_MEMORY_DATABASE) throw new UsageError('--to names an in-memory database, which is gone when the copy ends');
      const targetUrl = options.to;
      return async ({ db, output }) => {
        const targetDb = await openDatabase(targetUrl, { poolSize: 1 });
        try {
          const report = await copyDatabase(db, targetDb);
          output.out(`copied to ${describeDatabaseLocation(target)}: ${summarize(report)}`);
          return EXIT_OK;
        } finally {
          await targetDb.destroy();
        }
      };
    },
  },
};
