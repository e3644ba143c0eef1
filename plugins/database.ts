/** Decorates the instance with the Kysely database (SQLite or PostgreSQL), migrated, and the log of its outages; closes it with the server. */
import fp from 'fastify-plugin';
import { sql, type Kysely } from 'kysely';
import { openDatabase, SQLITE_BUSY_TIMEOUT_MS } from '../src/database/connection.js';
import { dialectOf } from '../src/database/dialect.js';
import { createOutageLog, type OutageLog } from '../src/database/outage.js';
import type { Database } from '../src/database/schema.js';

declare module 'fastify' {
  interface FastifyInstance {
    database: Kysely<Database>;
    /** Logs an outage of the database once, at its start and at its end, however many requests meet it. */
    databaseOutage: OutageLog;
  }
}

export interface DatabasePluginOptions {
  /** A SQLite path, a `sqlite:` URL or a `postgres://` URL. */
  databaseUrl: string;
  /** PostgreSQL: the most connections to open. */
  poolSize?: number | undefined;
}

export default fp<DatabasePluginOptions>(
  async (app, { databaseUrl, poolSize }) => {
    // better-sqlite3 waits for a lock on the only thread the server has: during an outage, a write
    // fails at once instead of holding every request up for the busy time-out, again and again.
    const setBusyTimeout = (milliseconds: number) => {
      if (dialectOf(database) === 'sqlite') sql`PRAGMA busy_timeout = ${sql.lit(milliseconds)}`.execute(database).catch(() => undefined);
    };
    const outages = createOutageLog(app.log, {
      onStart: () => {
        setBusyTimeout(0);
      },
      onEnd: () => {
        setBusyTimeout(SQLITE_BUSY_TIMEOUT_MS);
      },
    });
    const database: Kysely<Database> = await openDatabase(databaseUrl, {
      poolSize,
      onConnectionError: (error) => {
        if (!outages.failedIfUnavailable(error, 'database connection')) app.log.error({ err: error }, 'a database connection failed; it will be replaced');
      },
    });
    app.decorate('database', database);
    app.decorate('databaseOutage', outages);
    app.addHook('onClose', async () => {
      await database.destroy();
    });
  },
  { name: 'jwks-database', fastify: '5.x' },
);
