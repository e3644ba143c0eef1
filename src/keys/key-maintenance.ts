/**
 * The rules that keep one algorithm's line of keys whole, decided from the stored keys and the
 * clock alone: which keys to create and which schedules to change, as a plan that the key store
 * carries out under its write lock (src/keys/key-store.ts). Pure, so every rule is tested without
 * a database.
 */
import { scheduleExpiredKey, scheduleKey, signingLine, type KeyMetadata, type KeySchedule, type RotationPolicy } from './key-lifecycle.js';

export type KeyRole = 'active' | 'successor' | 'expired';

export interface LinePlan {
  /** Keys to create, in this order, each with the schedule it is created with. */
  create: { role: KeyRole; schedule: KeySchedule }[];
  /** Stored keys whose schedule changes (`publishedAt` never does). */
  reschedule: { kid: number; schedule: KeySchedule }[];
  /** Stored waiting keys made active early because their algorithm had no active key (downtime, revocation). */
  activated: number[];
  /** Stored keys kept (or put back) signing until the key behind them has been published for the lead time. */
  extended: number[];
}

/** A rotation: the new key, and what changes for the keys already stored. */
export interface RotationPlan {
  successor: KeySchedule;
  /** Its `create` is empty: the successor is created apart, as the rotation's result. */
  changes: LinePlan;
}

/** Longer than a running server takes to pick up a change made elsewhere (its sync interval, 1 s by default). */
export const ROTATION_SYNC_GRACE_SECONDS = 5;

/** A key as the plan shapes it: a copy of a stored key, or one to create. */
type PlannedKey = KeySchedule;

function scheduleOf({ publishedAt, activatesAt, retiresAt, exp }: KeySchedule): KeySchedule {
  return { publishedAt, activatesAt, retiresAt, exp };
}

/** Plans made on copies of the stored keys, then read off as the changes they amount to. */
function planner(keys: readonly KeyMetadata[], policy: RotationPolicy) {
  // Copies the rules may move, each beside what the database holds.
  const drafts = keys.map((key) => ({ ...key, stored: key }));
  const created: { role: KeyRole; key: PlannedKey }[] = [];
  const activated = new Set<PlannedKey>();
  const extended = new Set<PlannedKey>();

  function create(role: KeyRole, schedule: KeySchedule): PlannedKey {
    const key = { ...schedule };
    created.push({ role, key });
    return key;
  }

  function activate(key: PlannedKey, schedule: KeySchedule): void {
    activated.add(key);
    Object.assign(key, schedule);
  }

  function extend(key: PlannedKey, schedule: KeySchedule): void {
    extended.add(key);
    Object.assign(key, schedule);
  }

  /**
   * Lines `waiting` up behind `leader`: each key signs when the one before it retires, and never
   * before it has been published for the lead time; a key whose follower must wait signs longer.
   */
  function lineUp(leader: PlannedKey, waiting: readonly PlannedKey[]): void {
    let previous = leader;
    for (const key of waiting) {
      const activatesAt = Math.max(previous.retiresAt, key.publishedAt + policy.leadSeconds);
      if (activatesAt > previous.retiresAt) extend(previous, { ...previous, retiresAt: activatesAt, exp: activatesAt + policy.tokenTtlSeconds });
      Object.assign(key, scheduleKey(policy, key.publishedAt, activatesAt));
      previous = key;
    }
  }

  /** The plan: each new key with its final schedule, and every stored key whose schedule moved. */
  function finish(): LinePlan {
    const moved = ({ stored, activatesAt, retiresAt, exp }: (typeof drafts)[number]) => stored.activatesAt !== activatesAt || stored.retiresAt !== retiresAt || stored.exp !== exp;
    return {
      create: created.map(({ role, key }) => ({ role, schedule: scheduleOf(key) })),
      reschedule: drafts.filter(moved).map((draft) => ({ kid: draft.kid, schedule: scheduleOf(draft) })),
      activated: drafts.filter((draft) => activated.has(draft)).map((draft) => draft.kid),
      extended: drafts.filter((draft) => extended.has(draft)).map((draft) => draft.kid),
    };
  }

  return { drafts, create, activate, extend, lineUp, finish };
}

/** The key that retired last and is still published: every client that cached the JWKS knows it. */
function lastRetired<Key extends KeyMetadata>(keys: readonly Key[], now: number): Key | undefined {
  return keys.filter((key) => key.retiresAt <= now).sort((a, b) => b.retiresAt - a.retiresAt || b.exp - a.exp)[0];
}

type Planner = ReturnType<typeof planner>;

/**
 * Gives the line an active key when it has none (first start, downtime, revocation): the next
 * waiting key if it has been published for the lead time; else the key that retired last signs
 * again until it has; else the waiting key at once; else a new key at once.
 */
function restoreActiveKey(planning: Planner, waiting: PlannedKey[], now: number, policy: RotationPolicy): PlannedKey {
  const next = waiting[0];
  const matureAt = next === undefined ? now + policy.leadSeconds : next.publishedAt + policy.leadSeconds;
  const predecessor = lastRetired(planning.drafts, now);
  if (matureAt > now && predecessor !== undefined) {
    planning.extend(predecessor, { ...predecessor, retiresAt: matureAt, exp: Math.max(predecessor.exp, matureAt + policy.tokenTtlSeconds) });
    return predecessor;
  }
  waiting.shift();
  if (next === undefined) return planning.create('active', scheduleKey(policy, now, now));
  // Never before it was published, even by the clock of a process running a little behind the
  // one that published it.
  planning.activate(next, scheduleKey(policy, next.publishedAt, Math.max(now, next.publishedAt)));
  return next;
}

/**
 * What makes the line of one algorithm whole at `now`: an active key, a successor published a
 * lead time before it signs, each waiting key lined up behind the one before, and an expired key.
 * `keys` are the algorithm's unrevoked, unexpired keys.
 */
export function planLine(keys: readonly KeyMetadata[], hasExpiredKey: boolean, now: number, policy: RotationPolicy): LinePlan {
  const planning = planner(keys, policy);
  const line = signingLine(planning.drafts, now);
  const waiting: PlannedKey[] = line.waiting;
  const leader = line.active ?? restoreActiveKey(planning, waiting, now, policy);
  if (waiting.length === 0) {
    const activatesAt = Math.max(leader.retiresAt, now + policy.leadSeconds);
    waiting.push(planning.create('successor', scheduleKey(policy, now, activatesAt)));
  }
  planning.lineUp(leader, waiting);
  if (!hasExpiredKey) planning.create('expired', scheduleExpiredKey(policy, now));
  return planning.finish();
}

/**
 * A new key for the line, signing after the lead time or at once (`immediately`). The active key
 * signs until the new one does: sooner than planned, or later if it was due to retire within the
 * lead time, so that no moment is left without a signing key. Servers running on the database
 * learn of the rotation at their next sync and sign with the old key until then: when it retires
 * before they can have seen it, it stays published that much longer, so their tokens never outlive
 * it. Keys already waiting queue up behind the new one.
 */
export function planRotation(keys: readonly KeyMetadata[], now: number, policy: RotationPolicy, immediately: boolean): RotationPlan {
  const planning = planner(keys, policy);
  const { active, waiting } = signingLine(planning.drafts, now);
  const activatesAt = immediately ? now : now + policy.leadSeconds;
  const key = planning.create('successor', scheduleKey(policy, now, activatesAt));
  const grace = activatesAt - now < ROTATION_SYNC_GRACE_SECONDS ? ROTATION_SYNC_GRACE_SECONDS : 0;
  if (active !== undefined) Object.assign(active, { retiresAt: activatesAt, exp: activatesAt + policy.tokenTtlSeconds + grace });
  planning.lineUp(key, waiting);
  return { successor: scheduleOf(key), changes: { ...planning.finish(), create: [] } };
}
