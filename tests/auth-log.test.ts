/**
 * The auth log's group commit on a real database (both kinds): authentications recorded together
 * are one insert and one update, each caller told once its row is committed, a failed batch fails
 * exactly its callers; and through `POST /auth`, a failed write is a 500 JSON error, not a token.
 */
import type { KyselyPlugin, RootOperationNode } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createUserStore } from '../src/users/user-store.js';
import { expectJsonError, openTestDatabase, readyApp } from './helpers.js';
import { expectRecentTimestamp } from './users-helpers.js';

/** Counts the statements Kysely sends, by kind (`InsertQueryNode`, ...), without changing them. */
function statementCounter(): { plugin: KyselyPlugin; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  return {
    counts,
    plugin: {
      transformQuery({ node }): RootOperationNode {
        counts.set(node.kind, (counts.get(node.kind) ?? 0) + 1);
        return node;
      },
      transformResult: ({ result }) => Promise.resolve(result),
    },
  };
}

async function withUsers(usernames: readonly string[]) {
  const db = await openTestDatabase();
  const store = createUserStore(db);
  const ids = await Promise.all(usernames.map((username) => store.createUser({ username, email: `${username}@test.com`, passwordHash: 'x' })));
  return { db, ids };
}

describe('the auth log', () => {
  it('writes the authentications recorded in one turn with one insert and one update, and each is there once its promise resolves', async () => {
    const { db, ids } = await withUsers(['ann', 'bob']);
    const { plugin, counts } = statementCounter();
    const store = createUserStore(db.withPlugin(plugin));
    const [annId, bobId] = ids as [number, number];

    await Promise.all([
      store.recordSuccessfulAuth({ requestIp: '10.0.0.1', userId: annId }),
      store.recordSuccessfulAuth({ requestIp: '10.0.0.2', userId: null }),
      store.recordSuccessfulAuth({ requestIp: '10.0.0.3', userId: bobId }),
      store.recordSuccessfulAuth({ requestIp: '10.0.0.4', userId: annId }),
    ]);

    expect(Object.fromEntries(counts)).toEqual({ InsertQueryNode: 1, UpdateQueryNode: 1 });
    const logs = await db.selectFrom('auth_logs').select(['request_ip', 'user_id', 'request_timestamp']).orderBy('id').execute();
    expect(logs.map(({ request_ip, user_id }) => [request_ip, user_id])).toEqual([
      ['10.0.0.1', annId],
      ['10.0.0.2', null],
      ['10.0.0.3', bobId],
      ['10.0.0.4', annId],
    ]);
    for (const log of logs) expectRecentTimestamp(log.request_timestamp);
    const users = await db.selectFrom('users').select('last_login').execute();
    for (const user of users) expectRecentTimestamp(user.last_login);
  });

  it('writes authentications of non-users alone with the insert, in no transaction of their own', async () => {
    const { db } = await withUsers([]);
    const { plugin, counts } = statementCounter();
    const store = createUserStore(db.withPlugin(plugin));

    await Promise.all([store.recordSuccessfulAuth({ requestIp: '10.0.0.1', userId: null }), store.recordSuccessfulAuth({ requestIp: '10.0.0.2', userId: null })]);

    expect(Object.fromEntries(counts)).toEqual({ InsertQueryNode: 1 });
    expect(await db.selectFrom('auth_logs').select('request_ip').orderBy('id').execute()).toEqual([{ request_ip: '10.0.0.1' }, { request_ip: '10.0.0.2' }]);
  });

  it('fails every authentication of a batch that cannot be written, keeps none of its rows, and writes the next batch', async () => {
    const { db, ids } = await withUsers(['ann']);
    const store = createUserStore(db);
    const [annId] = ids as [number];
    // A user id nobody has breaks the foreign key, as a user removed meanwhile would.
    const batch = [
      store.recordSuccessfulAuth({ requestIp: '10.0.0.1', userId: annId }),
      store.recordSuccessfulAuth({ requestIp: '10.0.0.2', userId: 999_999 }),
      store.recordSuccessfulAuth({ requestIp: '10.0.0.3', userId: null }),
    ];

    const outcomes = await Promise.allSettled(batch);
    expect(outcomes.map(({ status }) => status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(await db.selectFrom('auth_logs').selectAll().execute()).toEqual([]);
    expect((await db.selectFrom('users').select('last_login').executeTakeFirstOrThrow()).last_login).toBeNull();

    await store.recordSuccessfulAuth({ requestIp: '10.0.0.4', userId: annId });
    expect(await db.selectFrom('auth_logs').select(['request_ip', 'user_id']).execute()).toEqual([{ request_ip: '10.0.0.4', user_id: annId }]);
  });
});

describe('POST /auth when its auth-log row cannot be written', () => {
  it('answers every request of the batch with a 500 JSON error and no token, and serves tokens again once the table is back', async () => {
    const app = await readyApp();
    await app.database.schema.alterTable('auth_logs').renameTo('auth_logs_away').execute();

    const refused = await Promise.all([1, 2, 3].map(() => app.inject({ method: 'POST', url: '/auth' })));
    for (const response of refused) {
      expect(expectJsonError(response, 500)).toBe('Internal Server Error');
      expect(response.body).not.toContain('auth_logs');
    }

    await app.database.schema.alterTable('auth_logs_away').renameTo('auth_logs').execute();
    const response = await app.inject({ method: 'POST', url: '/auth' });
    expect(response.statusCode).toBe(200);
    expect(await app.database.selectFrom('auth_logs').select('request_ip').execute()).toEqual([{ request_ip: '127.0.0.1' }]);
  });
});
