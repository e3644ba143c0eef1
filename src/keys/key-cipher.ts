/**
 * Encryption at rest of the private keys in `keys.key`: AES-256-GCM with a fresh random IV per
 * key, under a key derived from the operator's secret (NOT_MY_KEY) with argon2id.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { hashRaw } from '@node-rs/argon2';
import { sql, type Kysely } from 'kysely';
import { argon2idOptions, OWASP_ARGON2ID_COST, type Argon2idCost } from '../users/argon2id.js';
import { dialectOf } from '../database/dialect.js';
import type { Database } from '../database/schema.js';
import { withWriteLock } from '../database/write-lock.js';

/** Seals private keys before they are stored and opens them when they are read. */
export interface KeyCipher {
  readonly encrypted: boolean;
  seal(privateKeyPem: string): Buffer;
  open(stored: Buffer | string): string;
}

/** The secret is missing, wrong, or the stored keys cannot be decrypted with it. */
export class KeyEncryptionError extends Error {
  override readonly name = 'KeyEncryptionError';
  readonly code = 'ERR_JWKS_KEY_ENCRYPTION';
}

export const plaintextKeys: KeyCipher = {
  encrypted: false,
  seal: (privateKeyPem) => Buffer.from(privateKeyPem),
  open: (stored) => stored.toString(),
};

// Layout of a sealed key: version (1 byte) | IV (12) | GCM tag (16) | ciphertext.
const SEALED_FORMAT_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;
// Binds every ciphertext to its purpose, so nothing sealed elsewhere with the same key opens here.
const ASSOCIATED_DATA = Buffer.from('jwks-server private key v1');
const VERIFIER_PLAINTEXT = 'jwks-server key encryption verifier';

/** The KDF and its cost, stored with the salt so that a later release can raise the cost. */
interface KdfParameters extends Argon2idCost {
  name: 'argon2id';
}

const CURRENT_KDF: KdfParameters = { name: 'argon2id', ...OWASP_ARGON2ID_COST };

async function deriveKey(secret: string, salt: Buffer, { memoryCost, timeCost, parallelism }: KdfParameters): Promise<Buffer> {
  return hashRaw(secret, { ...argon2idOptions({ memoryCost, timeCost, parallelism }), outputLen: 32, salt });
}

function parseKdf(stored: string): KdfParameters {
  const parsed = JSON.parse(stored) as Partial<KdfParameters>;
  if (parsed.name !== 'argon2id' || typeof parsed.memoryCost !== 'number' || typeof parsed.timeCost !== 'number' || typeof parsed.parallelism !== 'number') {
    throw new KeyEncryptionError(`the key encryption settings name an unknown KDF: ${stored}`);
  }
  return { name: parsed.name, memoryCost: parsed.memoryCost, timeCost: parsed.timeCost, parallelism: parsed.parallelism };
}

function aesGcmCipher(key: Buffer): KeyCipher {
  return {
    encrypted: true,
    seal(privateKeyPem) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(ASSOCIATED_DATA);
      const ciphertext = Buffer.concat([cipher.update(privateKeyPem, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.of(SEALED_FORMAT_VERSION), iv, cipher.getAuthTag(), ciphertext]);
    },
    open(stored) {
      const sealed = Buffer.from(stored);
      if (sealed.length <= HEADER_BYTES || sealed[0] !== SEALED_FORMAT_VERSION) {
        throw new KeyEncryptionError('a stored key is not in the sealed format');
      }
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + IV_BYTES)).setAAD(ASSOCIATED_DATA);
      decipher.setAuthTag(sealed.subarray(1 + IV_BYTES, HEADER_BYTES));
      try {
        return Buffer.concat([decipher.update(sealed.subarray(HEADER_BYTES)), decipher.final()]).toString('utf8');
      } catch {
        throw new KeyEncryptionError('a stored key does not decrypt with this secret');
      }
    },
  };
}

function opensVerifier(cipher: KeyCipher, verifier: Buffer): boolean {
  try {
    return cipher.open(verifier) === VERIFIER_PLAINTEXT;
  } catch {
    return false;
  }
}

const PEM_PREFIX = '-----BEGIN';

/** Seals every key still stored as PEM; returns how many there were. */
async function sealPlaintextKeys(connection: Kysely<Database>, cipher: KeyCipher): Promise<number> {
  // In SQLite a PEM written by another server may be TEXT, which never equals bytes: compare as text.
  const storedAsPem =
    dialectOf(connection) === 'postgres'
      ? sql<boolean>`substr(key, 1, ${PEM_PREFIX.length}) = ${Buffer.from(PEM_PREFIX)}`
      : sql<boolean>`cast(substr(key, 1, ${PEM_PREFIX.length}) as text) = ${PEM_PREFIX}`;
  const plaintext = await connection.selectFrom('keys').select(['kid', 'key']).where(storedAsPem).execute();
  for (const { kid, key } of plaintext) {
    await connection.updateTable('keys').set({ key: cipher.seal(key.toString()) }).where('kid', '=', kid).execute();
  }
  return plaintext.length;
}

export interface PreparedKeyCipher {
  cipher: KeyCipher;
  /** How many keys stored as plaintext were sealed now. */
  sealedNow: number;
}

/**
 * The cipher for this database and secret. With a secret, the first use records a salt and a
 * verifier and seals every stored key, in one transaction; a later use with a different secret
 * is refused, never answered with new keys that would orphan the old ones. Without a secret,
 * keys stay PEM, and a database whose keys are encrypted is refused.
 */
export async function prepareKeyCipher(db: Kysely<Database>, secret: string | undefined): Promise<PreparedKeyCipher> {
  return withWriteLock(db, async (connection) => {
    const settings = await connection.selectFrom('key_encryption').selectAll().executeTakeFirst();
    if (secret === undefined) {
      if (settings !== undefined) {
        throw new KeyEncryptionError('the private keys in this database are encrypted: NOT_MY_KEY must be set to their secret');
      }
      return { cipher: plaintextKeys, sealedNow: 0 };
    }
    const salt = settings?.salt ?? randomBytes(16);
    const cipher = aesGcmCipher(await deriveKey(secret, salt, settings === undefined ? CURRENT_KDF : parseKdf(settings.kdf)));
    if (settings === undefined) {
      await connection
        .insertInto('key_encryption')
        .values({ id: 1, kdf: JSON.stringify(CURRENT_KDF), salt, verifier: cipher.seal(VERIFIER_PLAINTEXT) })
        .execute();
    } else if (!opensVerifier(cipher, settings.verifier)) {
      throw new KeyEncryptionError('NOT_MY_KEY is not the secret the private keys in this database were encrypted with');
    }
    return { cipher, sealedNow: await sealPlaintextKeys(connection, cipher) };
  });
}
