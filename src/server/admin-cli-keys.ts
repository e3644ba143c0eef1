/** The admin CLI's `keys` commands: list, rotate, revoke and prune the signing keys, export the JWKS. */
import { isSigningAlgorithm, type SigningAlgorithm } from '../keys/algorithms.js';
import { prepareKeyCipher } from '../keys/key-cipher.js';
import { keyState, type KeyMetadata, type RotationPolicy } from '../keys/key-lifecycle.js';
import { createKeyStore } from '../keys/key-store.js';
import { importSigningKey, toPublicJwk } from '../keys/public-jwk.js';
import { EXIT_NOT_FOUND, EXIT_OK, formatTable, UsageError, type CommandGroup, type Context } from './admin-cli-command.js';
import type { ServerConfig } from './config.js';

const USAGE = `Keys commands:
  list [--json]               every key: kid, algorithm, state and schedule
  rotate [--alg ALG] [--now]  publish a new key for each algorithm (or ALG); it signs after
                              JWKS_MAX_AGE seconds, or at once with --now
  revoke <kid>                take a key out of the JWKS and out of use, at once
  prune                       delete keys expired or revoked more than EXPIRED_KEY_RETENTION ago
  export-jwks                 print the published keys as a JWKS`;

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

function policyOf(config: ServerConfig): RotationPolicy {
  return { keyTtlSeconds: config.keyTtlSeconds, tokenTtlSeconds: config.tokenTtlSeconds, leadSeconds: config.jwksMaxAgeSeconds };
}

function describeKey(key: KeyMetadata, now: number) {
  return { kid: key.kid, alg: key.alg, state: keyState(key, now), publishedAt: key.publishedAt, activatesAt: key.activatesAt, retiresAt: key.retiresAt, exp: key.exp, revokedAt: key.revokedAt };
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

const OPTIONS = { json: { type: 'boolean' }, now: { type: 'boolean' }, alg: { type: 'string' } } as const;

/** `jwks-server keys <command>`. It never prints private material. */
export const keyCommands: CommandGroup<typeof OPTIONS> = {
  options: OPTIONS,
  usage: USAGE,
  commands: {
    list: ({ json }) => (context) => listKeys(context, json === true),
    rotate: ({ alg, now }, _operands, config) => {
      const algorithms = rotationAlgorithms(alg, config);
      return (context) => rotateKeys(context, algorithms, now === true);
    },
    revoke: (_options, [kid]) => {
      const checkedKid = parseKid(kid);
      return (context) => revokeKey(context, checkedKid);
    },
    prune: () => pruneKeys,
    'export-jwks': () => exportJwks,
  },
};
