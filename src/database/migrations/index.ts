/** Every migration, in order. Listed here rather than read from disk so that they ship with the build. */
import type { Migration } from 'kysely';
import * as createKeys from './0001-create-keys.js';
import * as createUsers from './0002-create-users.js';
import * as createKeyEncryption from './0003-create-key-encryption.js';
import * as createKeyLifecycle from './0004-create-key-lifecycle.js';
import * as indexRevokedKeys from './0005-index-revoked-keys.js';
import * as countKeyChanges from './0006-count-key-changes.js';
import * as createOAuthClients from './0007-create-oauth-clients.js';

export const migrations: Readonly<Record<string, Migration>> = {
  '0001-create-keys': createKeys,
  '0002-create-users': createUsers,
  '0003-create-key-encryption': createKeyEncryption,
  '0004-create-key-lifecycle': createKeyLifecycle,
  '0005-index-revoked-keys': indexRevokedKeys,
  '0006-count-key-changes': countKeyChanges,
  '0007-create-oauth-clients': createOAuthClients,
};
