import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { describe, expect, it } from 'vitest';
import { buildApp, type AppOptions } from '../src/app.js';
import { KeyEncryptionError, prepareKeyCipher } from '../src/keys/key-cipher.js';
import { newTestDatabase, openTestDatabase, readDatabase } from './helpers.js';

const SECRET = 'correct horse battery staple';

function storedKeys(url: string): Promise<{ kid: number; key: Buffer }[]> {
  return readDatabase(url, async (db) => (await db.selectFrom('keys').select(['kid', 'key']).orderBy('kid').execute()).map(({ kid, key }) => ({ kid, key: Buffer.from(key) })));
}

async function tokenAndJwks(app: FastifyInstance): Promise<{ token: string; jwks: JSONWebKeySet }> {
  const { token } = (await app.inject({ method: 'POST', url: '/auth' })).json<{ token: string }>();
  return { token, jwks: (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>() };
}

/** Builds and readies the app, collecting its log lines; closes it again. */
async function runOnce(options: AppOptions): Promise<{ logs: string; token: string; jwks: JSONWebKeySet }> {
  let logs = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs += chunk.toString();
      callback();
    },
  });
  const app = buildApp({ ...options, logger: { level: 'info', stream } });
  try {
    await app.ready();
    return { logs, ...(await tokenAndJwks(app)) };
  } finally {
    await app.close();
  }
}

describe('private keys encrypted at rest', () => {
  it('stores no key as PEM when NOT_MY_KEY is set, and still signs and verifies', async () => {
    const databasePath = await newTestDatabase();
    const { token, jwks } = await runOnce({ databaseUrl: databasePath, keyEncryptionSecret: SECRET });

    const keys = await storedKeys(databasePath);
    expect(keys).toHaveLength(3);
    const settings = await readDatabase(databasePath, (db) => db.selectFrom('key_encryption').selectAll().execute());
    expect(settings).toHaveLength(1);
    expect(JSON.parse(settings[0]?.kdf ?? '')).toEqual({ name: 'argon2id', memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(settings[0]?.salt).toHaveLength(16);
    for (const { key } of keys) {
      expect(key.toString('latin1').trim()).not.toMatch(/^-----BEGIN/);
      expect(key.toString('latin1')).not.toContain('PRIVATE KEY');
    }
    await expect(jwtVerify(token, createLocalJWKSet(jwks))).resolves.toBeDefined();
  });

  it('encrypts the keys of an existing plaintext database at start-up, keeping every kid', async () => {
    const databasePath = await newTestDatabase();
    const before = await runOnce({ databaseUrl: databasePath });
    expect(before.logs).toContain('NOT_MY_KEY is not set: private keys are stored unencrypted');
    const plaintextKids = (await storedKeys(databasePath)).map(({ kid, key }) => {
      expect(key.toString()).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
      return kid;
    });

    const after = await runOnce({ databaseUrl: databasePath, keyEncryptionSecret: SECRET });
    expect(after.logs).toContain('"keys":3,"msg":"encrypted private keys that were stored as PEM"');
    expect(after.logs).not.toContain('NOT_MY_KEY is not set');
    expect((await storedKeys(databasePath)).map(({ kid }) => kid)).toEqual(plaintextKids);
    expect((await storedKeys(databasePath)).every(({ key }) => !key.toString('latin1').startsWith('-----BEGIN'))).toBe(true);
    expect(after.jwks).toEqual(before.jwks);
    await expect(jwtVerify(before.token, createLocalJWKSet(after.jwks))).resolves.toBeDefined();

    // And again with the same secret: nothing left to encrypt, the same keys.
    const again = await runOnce({ databaseUrl: databasePath, keyEncryptionSecret: SECRET });
    expect(again.logs).not.toContain('encrypted private keys');
    expect(again.jwks).toEqual(before.jwks);
  });

  it.each([
    ['a wrong NOT_MY_KEY', 'not the secret', 'NOT_MY_KEY is not the secret the private keys in this database were encrypted with'],
    ['no NOT_MY_KEY', undefined, 'the private keys in this database are encrypted: NOT_MY_KEY must be set to their secret'],
  ])('refuses to start with %s, and generates no keys', async (_name, keyEncryptionSecret, message) => {
    const databasePath = await newTestDatabase();
    await runOnce({ databaseUrl: databasePath, keyEncryptionSecret: SECRET });
    const keysBefore = await storedKeys(databasePath);

    const app = buildApp({ databaseUrl: databasePath, keyEncryptionSecret });
    await expect(app.ready()).rejects.toThrow(new KeyEncryptionError(message));
    await app.close();
    expect((await storedKeys(databasePath))).toEqual(keysBefore);
  });

  it('seals each key with its own IV and authenticates it', async () => {
    const db = await openTestDatabase();
    const { cipher } = await prepareKeyCipher(db, SECRET);
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n';
    const [first, second] = [cipher.seal(pem), cipher.seal(pem)];
    expect(first.equals(second)).toBe(false);
    expect(cipher.open(first)).toBe(pem);

    const tampered = Buffer.from(first);
    tampered[tampered.length - 1] = (tampered.at(-1) ?? 0) ^ 1;
    expect(() => cipher.open(tampered)).toThrow('a stored key does not decrypt with this secret');
    expect(() => cipher.open(Buffer.from(pem))).toThrow('a stored key is not in the sealed format');
  });

  it('warns at start-up that keys are stored as PEM without NOT_MY_KEY', async () => {
    const { logs } = await runOnce({ databaseUrl: await newTestDatabase() });
    expect(logs).toMatch(/"level":40,.*NOT_MY_KEY is not set/);
  });
});
