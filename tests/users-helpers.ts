/** The users routes' test steps: registering, signing in, and reading the rows they write. */
import type { FastifyInstance, InjectOptions } from 'fastify';
import { expect } from 'vitest';
import { testDialect } from './helpers.js';

const SQLITE_TIMESTAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;
/** A CURRENT_TIMESTAMP written a moment ago: SQLite text in UTC, or a PostgreSQL TIMESTAMPTZ read as a Date. */
export function expectRecentTimestamp(value: unknown): void {
  if (testDialect === 'sqlite') expect(value).toMatch(SQLITE_TIMESTAMP);
  const time = value instanceof Date ? value.getTime() : Date.parse(`${String(value).replace(' ', 'T')}Z`);
  expect(Math.abs(Date.now() - time)).toBeLessThan(60_000);
}

export async function register(app: FastifyInstance, username = 'testor_1a2b3c4d', email = `${username}@test.com`): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/register', payload: { username, email } });
  expect(response.statusCode).toBe(201);
  return response.json<{ password: string }>().password;
}

export async function tokenFor(app: FastifyInstance, request: Omit<InjectOptions, 'method' | 'url'> & { url?: string }): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/auth', ...request });
  expect(response.statusCode).toBe(200);
  return response.json<{ token: string }>().token;
}

export function userRows(app: FastifyInstance) {
  return app.database.selectFrom('users').selectAll().execute();
}
