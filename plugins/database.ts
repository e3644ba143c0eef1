/** Decorates the instance with the Kysely database, migrated, and closes it with the server. */
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
  databasePath: string;
}

export default fp<DatabasePluginOptions>(
  async (app, { databasePath }) => {
    const database = await openDatabase(databasePath);
    app.decorate('database', database);
    app.addHook('onClose', async () => {
      await database.destroy();
    });
  },
  { name: 'jwks-database', fastify: '5.x' },
);
