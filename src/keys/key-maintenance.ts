/**
 * The rules that keep one algorithm's line of keys whole, decided from the stored keys and the
 * clock alone: which keys to create and which schedules to change, as a plan that the key store
 * carries out under its write lock (src/keys/key-store.ts). Pure, so every rule is tested without
 * a database.
 */
import { scheduleExpiredKey, scheduleKey, signingLine, type KeyMetadata, type KeySchedule, type RotationPolicy } from './key-lifecycle.js';

export type KeyRole = 'active' | 'successor' | 'expired';

/** A key the plan names: a stored one by its kid, or the n-th of those it creates. */
export type PlannedKeyRef = { kid: number } | { created: number };

export interface LinePlan {
  /** Keys to create, in this order, each with the schedule it is created with. */
  create: { role: KeyRole; schedule: KeySchedule }[];
  /** Stored keys whose schedule changes (`publishedAt` never does). */
  reschedule: { kid: number; schedule: KeySchedule }[];
  /** Waiting keys made active early because their algorithm had no active key (downtime, revocation). */
  activated: PlannedKeyRef[];
  /** Keys kept (or put back) signing until the key behind them has been published for the lead time. */
  extended: PlannedKeyRef[];
}

/** Longer than a running server takes to pick up a change made elsewhere (its sync interval, 1 s by default). */
export const ROTATION_SYNC_GRACE_SECONDS = 5;

/** A key as the plan is shaping it. */
interface Draft {
  ref: PlannedKeyRef;
  /** What the database holds now; none for a key still to create. */
  stored: KeyMetadata | undefined;
  schedule: KeySchedule;
}

/** Plans made on drafts of the stored keys, then read off as the changes they amount to. */
function planner(keys: readonly KeyMetadata[], policy: RotationPolicy) {
  const drafts = new Map(
    keys.map(({ kid, publishedAt, activatesAt, retiresAt, exp }, index): [number, Draft] => [kid, { ref: { kid }, stored: keys[index], schedule: { publishedAt, activatesAt, retiresAt, exp } }]),
  );
  const created: { role: KeyRole; draft: Draft }[] = [];
  const activated: PlannedKeyRef[] = [];
  const extended: PlannedKeyRef[] = [];

  function draftOf(key: KeyMetadata): Draft {
    const draft = drafts.get(key.kid);
    if (draft === undefined) throw new Error(`key ${String(key.kid)} is not in the plan`);
    return draft;
  }

  function create(role: KeyRole, schedule: KeySchedule): Draft {
    const draft: Draft = { ref: { created: created.length }, stored: undefined, schedule };
    created.push({ role, draft });
    return draft;
  }

  function activate(draft: Draft, schedule: KeySchedule): void {
    activated.push(draft.ref);
    draft.schedule = schedule;
  }

  function extend(draft: Draft, schedule: KeySchedule): void {
    extended.push(draft.ref);
    draft.schedule = schedule;
  }

  /**
   * Lines `waiting` up behind `leader`: each key signs when the one before it retires, and never
   * before it has been published for the lead time; a key whose follower must wait signs longer.
   */
  function lineUp(leader: Draft, waiting: readonly Draft[]): void {
    let previous = leader;
    for (const key of waiting) {
      const activatesAt = Math.max(previous.schedule.retiresAt, key.schedule.publishedAt + policy.leadSeconds);
      if (activatesAt > previous.schedule.retiresAt) extend(previous, { ...previous.schedule, retiresAt: activatesAt, exp: activatesAt + policy.tokenTtlSeconds });
      key.schedule = scheduleKey(policy, key.schedule.publishedAt, activatesAt);
      previous = key;
    }
  }

  /** The plan: every stored key whose schedule moved, and each new key with its final schedule. */
  function finish(): LinePlan {
    const reschedule: LinePlan['reschedule'] = [];
    for (const { stored, schedule } of drafts.values()) {
      if (stored === undefined || (stored.activatesAt === schedule.activatesAt && stored.retiresAt === schedule.retiresAt && stored.exp === schedule.exp)) continue;
      reschedule.push({ kid: stored.kid, schedule: { ...schedule, publishedAt: stored.publishedAt } });
    }
    return { create: created.map(({ role, draft }) => ({ role, schedule: draft.schedule })), reschedule, activated, extended };
  }

  return { draftOf, create, activate, extend, lineUp, finish };
}

type Planner = ReturnType<typeof planner>;

/** The key that retired last and is still published: every client that cached the JWKS knows it. */
function lastRetired(keys: readonly KeyMetadata[], now: number): KeyMetadata | undefined {
  return keys.filter((key) => key.retiresAt <= now).sort((a, b) => b.retiresAt - a.retiresAt || b.exp - a.exp)[0];
}

/**
 * Gives the line an active key when it has none (first start, downtime, revocation): the next
 * waiting key if it has been published for the lead time; else the key that retired last signs
 * again until it has; else the waiting key at once; else a new key at once.
 */
function restoreActiveKey(planning: Planner, keys: readonly KeyMetadata[], waiting: Draft[], now: number, policy: RotationPolicy): Draft {
  const next = waiting[0];
  const matureAt = next === undefined ? now + policy.leadSeconds : next.schedule.publishedAt + policy.leadSeconds;
  const predecessor = lastRetired(keys, now);
  if (matureAt > now && predecessor !== undefined) {
    const draft = planning.draftOf(predecessor);
    planning.extend(draft, { ...draft.schedule, retiresAt: matureAt, exp: Math.max(predecessor.exp, matureAt + policy.tokenTtlSeconds) });
    return draft;
  }
  waiting.shift();
  if (next === undefined) return planning.create('active', scheduleKey(policy, now, now));
  // Never before it was published, even by the clock of a process running a little behind the
  // one that published it.
  planning.activate(next, scheduleKey(policy, next.schedule.publishedAt, Math.max(now, next.schedule.publishedAt)));
  return next;
}

/**
 * What makes the line of one algorithm whole at `now`: an active key, a successor published a
 * lead time before it signs, each waiting key lined up behind the one before, and an expired key.
 * `keys` are the algorithm's unrevoked, unexpired keys.
 */
export function planLine(keys: readonly KeyMetadata[], hasExpiredKey: boolean, now: number, policy: RotationPolicy): LinePlan {
  const planning = planner(keys, policy);
  const line = signingLine(keys, now);
  const waiting = line.waiting.map(planning.draftOf);
  const leader = line.active === undefined ? restoreActiveKey(planning, keys, waiting, now, policy) : planning.draftOf(line.active);
  if (waiting.length === 0) {
    const activatesAt = Math.max(leader.schedule.retiresAt, now + policy.leadSeconds);
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
export function planRotation(keys: readonly KeyMetadata[], now: number, policy: RotationPolicy, immediately: boolean): LinePlan {
  const planning = planner(keys, policy);
  const { active, waiting } = signingLine(keys, now);
  const activatesAt = immediately ? now : now + policy.leadSeconds;
  const key = planning.create('successor', scheduleKey(policy, now, activatesAt));
  const grace = activatesAt - now < ROTATION_SYNC_GRACE_SECONDS ? ROTATION_SYNC_GRACE_SECONDS : 0;
  if (active !== undefined) {
    const draft = planning.draftOf(active);
    draft.schedule = { ...draft.schedule, retiresAt: activatesAt, exp: activatesAt + policy.tokenTtlSeconds + grace };
  }
  planning.lineUp(key, waiting.map(planning.draftOf));
  return planning.finish();
}
