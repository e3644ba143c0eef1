/**
 * The admin CLI, `jwks-server keys <command>`, on the database the server uses (the same
 * environment variables). Results go to stdout, problems to stderr, and the exit code says
 * which: 0 done, 1 failed, 2 wrong usage, 3 no such key. It never prints private material.
 */
import { parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { isSigningAlgorithm, type SigningAlgorithm } from '../keys/algorithms.js';
import { systemClock } from '../common/clock.js';
import { ConfigError, loadConfig, type ServerConfig } from './config.js';
import { openDatabase } from '../database/connection.js';
import type { Database } from '../database/schema.js';
import { prepareKeyCipher } from '../keys/key-cipher.js';
import { keyState, type KeyMetadata, type RotationPolicy } from '../keys/key-lifecycle.js';
import { createKeyStore } from '../keys/key-store.js';
import { importSigningKey, toPublicJwk } from '../keys/public-jwk.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_NOT_FOUND = 3;

const USAGE = `Usage: jwks-server keys <command>

Commands:
  list [--json]               every key: kid, algorithm, state and schedule
  rotate [--alg ALG] [--now]  publish a new key for each algorithm (or ALG); it signs after
                              JWKS_MAX_AGE seconds, or at once with --now
  revoke <kid>                take a key out of the JWKS and out of use, at once
  prune                       delete keys expired or revoked more than EXPIRED_KEY_RETENTION ago
  export-jwks                 print the published keys as a JWKS

Reads DATABASE_URL, NOT_MY_KEY, ALGORITHMS, KEY_TTL, TOKEN_TTL, JWKS_MAX_AGE and
EXPIRED_KEY_RETENTION like the server. Exit codes: 0 done, 1 failed, 2 usage, 3 no such key.`;

/** Wrong usage: the message is printed with the usage text. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

interface Output {
  out(text: string): void;
  err(text: string): void;
}

interface Context {
  db: Kysely<Database>;
  config: ServerConfig;
  now: number;
  output: Output;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

function policyOf(config: ServerConfig): RotationPolicy {
  return { keyTtlSeconds: config.keyTtlSeconds, tokenTtlSeconds: config.tokenTtlSeconds, leadSeconds: config.jwksMaxAgeSeconds };
}

function describeKey(key: KeyMetadata, now: number) {
  return { kid: key.kid, alg: key.alg, state: keyState(key, now), publishedAt: key.publishedAt, activatesAt: key.activatesAt, retiresAt: key.retiresAt, exp: key.exp, revokedAt: key.revokedAt };
}

function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_cell, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()).join('\n');
}

async function listKeys({ db, now, output }: Context, json: boolean): Promise<number> {
  const keys = (await createKeyStore(db).listKeys()).map((key) => describeKey(key, now));
  if (json) {
    output.out(JSON.stringify(keys, null, 2));
    return EXIT_OK;
  }
  const header = ['KID', 'ALG', 'STATE', 'PUBLISHED', 'SIGNS FROM', 'SIGNS UNTIL', 'EXPIRES'];
  const rows = keys.map((key) => [String(key.kid), key.alg, key.state, iso(key.publishedAt), iso(key.activatesAt), iso(key.retiresAt), iso(key.exp)]);
  output.out(formatTable([header, ...rows]));
  return EXIT_OK;
}

/** The algorithms `rotate` works on: the one `--alg` names, which must be configured, or all of them. */
function rotationAlgorithms(requested: string | undefined, config: ServerConfig): readonly SigningAlgorithm[] {
  if (requested === undefined) return config.algorithms;
  // A key for an algorithm the servers do not sign with would be published and never used.
  if (!isSigningAlgorithm(requested) || !config.algorithms.includes(requested)) {
    throw new UsageError(`--alg must be one of ALGORITHMS (${config.algorithms.join(', ')}), got ${JSON.stringify(requested)}`);
  }
  return [requested];
}

async function rotateKeys({ db, config, now, output }: Context, algorithms: readonly SigningAlgorithm[], immediately: boolean): Promise<number> {
  const { cipher } = await prepareKeyCipher(db, config.keyEncryptionSecret);
  const keyStore = createKeyStore(db, cipher);
  for (const algorithm of algorithms) {
    const key = await keyStore.rotate(now, algorithm, policyOf(config), { immediately });
    output.out(`${algorithm}: published key ${String(key.kid)}, signing from ${iso(key.activatesAt)}`);
  }
  return EXIT_OK;
}

function parseKid(argument: string | undefined): number {
  const kid = argument !== undefined && /^[1-9]\d*$/.test(argument) ? Number(argument) : Number.NaN;
  if (!Number.isSafeInteger(kid)) throw new UsageError('revoke needs the kid of one key, a positive whole number');
  return kid;
}

async function revokeKey({ db, now, output }: Context, kid: number): Promise<number> {
  const outcome = await createKeyStore(db).revoke(kid, now);
  if (outcome === 'not-found') {
    output.err(`jwks-server: there is no key ${String(kid)}`);
    return EXIT_NOT_FOUND;
  }
  output.out(outcome === 'revoked' ? `revoked key ${String(kid)}` : `key ${String(kid)} was already revoked`);
  return EXIT_OK;
}

async function pruneKeys({ db, config, now, output }: Context): Promise<number> {
  const kids = await createKeyStore(db).prune(now, config.expiredKeyRetentionSeconds);
  output.out(kids.length === 0 ? 'nothing to prune' : `pruned ${String(kids.length)} keys: ${kids.join(', ')}`);
  return EXIT_OK;
}

async function exportJwks({ db, config, now, output }: Context): Promise<number> {
  const { cipher } = await prepareKeyCipher(db, config.keyEncryptionSecret);
  // With no algorithms asked for, no expired key comes along: the published keys only.
  const published = (await createKeyStore(db, cipher).loadServingKeys(now, [])).sort((a, b) => a.kid - b.kid);
  const keys = await Promise.all(published.map(({ kid, alg, privateKeyPem }) => toPublicJwk(String(kid), alg, importSigningKey(String(kid), alg, privateKeyPem))));
  output.out(JSON.stringify({ keys }));
  return EXIT_OK;
}

async function runCommand(args: readonly string[], context: Omit<Context, 'db' | 'config'> & { env: NodeJS.ProcessEnv }): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { json: { type: 'boolean' }, now: { type: 'boolean' }, alg: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [group, command, ...rest] = positionals;
  if (values.help === true) {
    context.output.out(USAGE);
    return EXIT_OK;
  }
  if (group !== 'keys' || command === undefined) throw new UsageError('expected "keys" and a command');
  // Each command checks its arguments first, so that wrong usage is told before any database is opened.
  const commands: Record<string, (config: ServerConfig) => (full: Context) => Promise<number>> = {
    list: () => (full) => listKeys(full, values.json === true),
    rotate: (config) => {
      const algorithms = rotationAlgorithms(values.alg, config);
      return (full) => rotateKeys(full, algorithms, values.now === true);
    },
    revoke: () => {
      const kid = parseKid(rest[0]);
      return (full) => revokeKey(full, kid);
    },
    prune: () => pruneKeys,
    'export-jwks': () => exportJwks,
  };
  const prepare = commands[command];
  if (prepare === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  const config = loadConfig(context.env);
  const run = prepare(config);
  const db = await openDatabase(config.databaseUrl, { mustExist: true, poolSize: config.databasePoolSize });
  try {
    return await run({ ...context, db, config });
  } finally {
    await db.destroy();
  }
}

/** Runs the CLI on `args` (without `node` and the script) and returns its exit code. */
export async function main(args: readonly string[], env: NodeJS.ProcessEnv = process.env, output: Output = { out: console.log, err: console.error }): Promise<number> {
  try {
    return await runCommand(args, { env, now: systemClock(), output });
  } catch (error) {
    if (error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      output.err(`jwks-server: ${error.message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    const message = error instanceof ConfigError ? `invalid configuration: ${error.message}` : error instanceof Error ? error.message : String(error);
    output.err(`jwks-server: ${message}`);
    return EXIT_FAILED;
  }
}
