/** The admin CLI's `db` commands: a consistent backup of a running server's SQLite database. */
import { backupSqlite } from '../database/backup.js';
import { IN_MEMORY_DATABASE, parseDatabaseUrl } from '../database/location.js';
import { EXIT_OK, UsageError, type CommandGroup } from './admin-cli-command.js';

const USAGE = `Database commands:
  backup <file>               a consistent copy of the SQLite database in a new file, safe to
                              take while the server runs (PostgreSQL: use pg_dump)`;

const NO_OPTIONS = {} as const;

export const databaseCommands: CommandGroup<typeof NO_OPTIONS> = {
  options: NO_OPTIONS,
  usage: USAGE,
  commands: {
    backup: (_options, operands, config) => {
      const [destination, ...rest] = operands;
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
  },
};
