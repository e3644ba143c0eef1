/**
 * The in-memory view of the key store that requests are served from: the imported signing keys,
 * the public JWKS serialized once with its ETag, and which key signs for each algorithm now.
 * It is re-derived in memory when a key changes state, reloaded from the database only when the
 * database changed, and keeps the store maintained (successors published ahead, old keys pruned).
 */
import type { KeyObject } from 'node:crypto';
import type { AlgorithmList, SigningAlgorithm } from './algorithms.js';
import { cachedDocument, type CachedDocument } from './cached-document.js';
import { signingLine, type KeyMetadata, type RotationPolicy } from './key-lifecycle.js';
import { KeyStoreError, type KeyStore, type MaintenanceReport } from './key-store.js';
import { importSigningKey, toPublicJwk, type PublicJwk } from './public-jwk.js';
import type { Clock } from '../common/clock.js';

export interface Jwks {
  keys: PublicJwk[];
}

export interface KeyringKey {
  kid: string;
  alg: SigningAlgorithm;
  /** End of the key's publication, in unix seconds: no token it signs may outlive it. */
  exp: number;
  privateKey: KeyObject;
}

export interface PublishedKey {
  jwk: PublicJwk;
  /** `{ "keys": [jwk] }`, as the per-kid endpoint serves it. */
  document: CachedDocument;
}

export interface KeyringSnapshot {
  /** Every published key: waiting, active and retired ones, of every algorithm. */
  jwks: Jwks;
  jwksDocument: CachedDocument;
  findPublishedKey(kid: string): PublishedKey | undefined;
  /** The key that signs new tokens with `algorithm`. */
  signingKey(algorithm: SigningAlgorithm): KeyringKey;
  /** The latest expired key of `algorithm`, for `POST /auth?expired=true`. */
  expiredKey(algorithm: SigningAlgorithm): KeyringKey;
  /** The unix second at which some key changes state and the snapshot must be derived again. */
  validUntil: number;
}

export interface Keyring {
  /** The algorithms the keyring keeps signing keys for, the default first. */
  readonly algorithms: AlgorithmList;
  /** The snapshot for this moment; maintains the store first if an algorithm lacks a key. */
  current(): Promise<KeyringSnapshot>;
  /** The snapshot for this moment when it needs no rebuild; lets hot routes answer without a promise. */
  fresh(): KeyringSnapshot | undefined;
  /** One scheduler step: reload if another process changed the database, maintain and prune when due. */
  sync(): Promise<void>;
  /** Reads the store again, after a change made through it in this process. */
  reload(): Promise<void>;
}

export interface KeyringOptions {
  keyStore: KeyStore;
  algorithms: AlgorithmList;
  policy: RotationPolicy;
  /** How long expired and revoked keys are kept before they are pruned. */
  expiredKeyRetentionSeconds: number;
  clock: Clock;
  /** Told what each maintenance pass that changed something did, so that the caller can log it. */
  onMaintenance?: (report: MaintenanceReport) => void;
  onPruned?: (kids: readonly number[]) => void;
  /** Told when the key that signs an algorithm's new tokens changes (not when the first keys are loaded). */
  onSigningKeyChange?: (algorithm: SigningAlgorithm, kid: string) => void;
}

// Pruning is housekeeping: once a minute is plenty, and keeps the scheduler's steps cheap.
const PRUNE_INTERVAL_SECONDS = 60;

interface LoadedKey extends KeyMetadata {
  signingKey: KeyringKey;
  published: PublishedKey;
}

function latestExpired(keys: readonly LoadedKey[], algorithm: SigningAlgorithm, now: number): LoadedKey | undefined {
  let latest: LoadedKey | undefined;
  for (const key of keys) {
    if (key.alg !== algorithm || key.revokedAt !== null || key.exp > now) continue;
    if (latest === undefined || key.exp > latest.exp || (key.exp === latest.exp && key.kid > latest.kid)) latest = key;
  }
  return latest;
}

function nextStateChange(keys: readonly LoadedKey[], now: number): number {
  const upcoming = keys.flatMap(({ activatesAt, retiresAt, exp }) => [activatesAt, retiresAt, exp]).filter((time) => time > now);
  return Math.min(...upcoming);
}

/** The snapshot at `now`, or undefined when an algorithm has no active or no expired key. */
function deriveSnapshot(keys: readonly LoadedKey[], algorithms: readonly SigningAlgorithm[], now: number, previous: KeyringSnapshot | undefined): KeyringSnapshot | undefined {
  const signing = new Map<SigningAlgorithm, KeyringKey>();
  const expired = new Map<SigningAlgorithm, KeyringKey>();
  for (const algorithm of algorithms) {
    const active = signingLine(keys.filter((key) => key.alg === algorithm), now).active;
    const lastExpired = latestExpired(keys, algorithm, now);
    if (active === undefined || lastExpired === undefined) return undefined;
    signing.set(algorithm, active.signingKey);
    expired.set(algorithm, lastExpired.signingKey);
  }
  const published = keys.filter((key) => key.revokedAt === null && key.exp > now).sort((a, b) => a.kid - b.kid);
  const byKid = new Map(published.map((key) => [String(key.kid), key.published]));
  const unchanged = previous?.jwks.keys.length === byKid.size && previous.jwks.keys.every((jwk) => byKid.get(jwk.kid)?.jwk === jwk);
  // The same set keeps the same objects, so ETags and per-set caches downstream stay valid.
  const jwks = unchanged ? previous.jwks : { keys: published.map((key) => key.published.jwk) };
  const select = (keysByAlgorithm: Map<SigningAlgorithm, KeyringKey>, algorithm: SigningAlgorithm): KeyringKey => {
    const key = keysByAlgorithm.get(algorithm);
    if (key === undefined) throw new KeyStoreError(`${algorithm} is not one of the keyring's algorithms`);
    return key;
  };
  return {
    jwks,
    jwksDocument: unchanged ? previous.jwksDocument : cachedDocument(jwks),
    findPublishedKey: (kid) => byKid.get(kid),
    signingKey: (algorithm) => select(signing, algorithm),
    expiredKey: (algorithm) => select(expired, algorithm),
    validUntil: nextStateChange(keys, now),
  };
}

export function createKeyring(options: KeyringOptions): Keyring {
  const { keyStore, algorithms, policy, clock } = options;
  // Imported once per kid: parsing keys and exporting JWKs is the expensive part of a reload.
  let imported = new Map<number, Pick<LoadedKey, 'signingKey' | 'published'>>();
  let keys: LoadedKey[] = [];
  let snapshot: KeyringSnapshot | undefined;
  let seenChangeCounter: number | undefined;
  let nextPruneAt = Number.NEGATIVE_INFINITY;
  // Every database step runs one after another, whether the scheduler or a request asked for it.
  let queue: Promise<unknown> = Promise.resolve();
  let rebuilding: Promise<KeyringSnapshot> | undefined;
  const signingKids = new Map<SigningAlgorithm, string>();

  function derive(now: number): void {
    snapshot = deriveSnapshot(keys, algorithms, now, snapshot);
    if (snapshot === undefined) return;
    for (const algorithm of algorithms) {
      const { kid } = snapshot.signingKey(algorithm);
      const previous = signingKids.get(algorithm);
      signingKids.set(algorithm, kid);
      if (previous !== undefined && previous !== kid) options.onSigningKeyChange?.(algorithm, kid);
    }
  }

  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  }

  async function load(): Promise<void> {
    const now = clock();
    // Read before the keys and recorded only once they are loaded: a change committed meanwhile,
    // or a load that fails, is loaded again at the next step.
    const changeCounter = await keyStore.changeCounter();
    const stored = await keyStore.loadServingKeys(now, algorithms);
    const next = new Map<number, Pick<LoadedKey, 'signingKey' | 'published'>>();
    keys = await Promise.all(
      stored.map(async ({ privateKeyPem, ...metadata }) => {
        const kid = String(metadata.kid);
        let forms = imported.get(metadata.kid);
        if (forms === undefined) {
          const privateKey = importSigningKey(kid, metadata.alg, privateKeyPem);
          const jwk = await toPublicJwk(kid, metadata.alg, privateKey);
          forms = { signingKey: { kid, alg: metadata.alg, exp: metadata.exp, privateKey }, published: { jwk, document: cachedDocument({ keys: [jwk] }) } };
        }
        // The schedule can change (a rotation, a late successor); the key material never does.
        if (forms.signingKey.exp !== metadata.exp) forms = { ...forms, signingKey: { ...forms.signingKey, exp: metadata.exp } };
        next.set(metadata.kid, forms);
        return { ...metadata, ...forms };
      }),
    );
    imported = next;
    seenChangeCounter = changeCounter;
    derive(now);
  }

  async function maintain(): Promise<void> {
    const report = await keyStore.maintain(clock(), algorithms, policy);
    const changed = Object.values(report).some((entries: readonly unknown[]) => entries.length > 0);
    if (changed) options.onMaintenance?.(report);
  }

  async function rebuild(): Promise<KeyringSnapshot> {
    derive(clock());
    if (snapshot === undefined) {
      await maintain();
      await load();
    }
    if (snapshot === undefined) throw new KeyStoreError('the key store has no usable key for an algorithm even after maintenance');
    return snapshot;
  }

  function freshSnapshot(): KeyringSnapshot | undefined {
    return snapshot !== undefined && clock() < snapshot.validUntil ? snapshot : undefined;
  }

  /** True when the line of some algorithm has no waiting successor left, so one must be published. */
  function successorDue(now: number): boolean {
    return algorithms.some((algorithm) => signingLine(keys.filter((key) => key.alg === algorithm), now).waiting.length === 0);
  }

  return {
    algorithms,

    fresh: freshSnapshot,

    current() {
      const ready = freshSnapshot();
      if (ready !== undefined) return Promise.resolve(ready);
      // One rebuild at a time: concurrent requests at the moment of a state change share it.
      rebuilding ??= exclusive(rebuild).finally(() => {
        rebuilding = undefined;
      });
      return rebuilding;
    },

    sync: () =>
      exclusive(async () => {
        const now = clock();
        if ((await keyStore.changeCounter()) !== seenChangeCounter) await load();
        if (snapshot === undefined || successorDue(now)) {
          await maintain();
          await load();
        }
        if (now >= nextPruneAt) {
          nextPruneAt = now + PRUNE_INTERVAL_SECONDS;
          const pruned = await keyStore.prune(now, options.expiredKeyRetentionSeconds);
          if (pruned.length > 0) options.onPruned?.(pruned);
        }
      }),

    reload: () => exclusive(load),
  };
}
