/** Every migration, in order. Listed here rather than read from disk so that they ship with the build. */
import type { Migration } from 'kysely';
import * as createKeys from './0001-create-keys.js';

export const migrations: Readonly<Record<string, Migration>> = {
  '0001-create-keys': createKeys,
};
