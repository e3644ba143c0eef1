/** Decorates the instance with the Kysely database (SQLite or PostgreSQL), migrated, and closes it with the server. */
import fp from 'fastify-plugin';
import type { Kysely } from 'kysely';
import { openDatabase } from '../src/database/connection.js';
import type { Database } from '../src/database/schema.js';

declare module 'fastify' {
  interface FastifyInstance {
    database: Kysely<Database>;
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
    const database = await openDatabase(databaseUrl, {
      poolSize,
      onConnectionError: (error) => {
        app.log.error({ err: error }, 'a database connection failed; it will be replaced');
      },
    });
    app.decorate('database', database);
    app.addHook('onClose', async () => {
      await database.destroy();
    });
  },
  { name: 'jwks-database', fastify: '5.x' },
);
