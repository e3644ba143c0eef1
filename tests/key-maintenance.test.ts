import { describe, expect, it } from 'vitest';
import { scheduleExpiredKey, scheduleKey, signingLine, type KeyMetadata, type KeySchedule } from '../src/keys/key-lifecycle.js';
import { planLine, planRotation, ROTATION_SYNC_GRACE_SECONDS } from '../src/keys/key-maintenance.js';
import { NOW, POLICY } from './key-fixtures.js';

function stored(kid: number, schedule: KeySchedule): KeyMetadata {
  return { kid, alg: 'RS256', revokedAt: null, ...schedule };
}

describe('signingLine', () => {
  const key = (kid: number, activatesAt: number, retiresAt: number): KeyMetadata => ({
    kid,
    alg: 'RS256',
    publishedAt: NOW - 1000,
    activatesAt,
    retiresAt,
    exp: retiresAt + 600,
    revokedAt: null,
  });

  it('takes the key that activated last when two overlap, and orders waiting keys by activation, then kid', () => {
    const line = signingLine(
      [key(1, NOW - 500, NOW + 500), key(2, NOW - 100, NOW + 900), key(6, NOW - 300, NOW + 300), key(4, NOW + 900, NOW + 1800), key(3, NOW + 900, NOW + 1800), key(5, NOW + 600, NOW + 900)],
      NOW,
    );
    expect(line.active?.kid).toBe(2);
    expect(line.waiting.map(({ kid }) => kid)).toEqual([5, 3, 4]);
  });
});

// The rules alone, on keys in memory: the store's own tests check that it carries plans out.
describe('planLine', () => {
  it('plans a whole line for an empty store: a key signing now, a successor published now that signs when it retires, an expired key', () => {
    expect(planLine([], false, NOW, POLICY)).toEqual({
      create: [
        { role: 'active', schedule: scheduleKey(POLICY, NOW, NOW) },
        { role: 'successor', schedule: scheduleKey(POLICY, NOW, NOW + POLICY.keyTtlSeconds) },
        { role: 'expired', schedule: scheduleExpiredKey(POLICY, NOW) },
      ],
      reschedule: [],
      activated: [],
      extended: [],
    });
  });

  it('plans nothing for a whole line', () => {
    const active = stored(1, scheduleKey(POLICY, NOW - 100, NOW - 100));
    const successor = stored(2, scheduleKey(POLICY, NOW - 100, active.retiresAt));
    expect(planLine([active, successor], true, NOW, POLICY)).toEqual({ create: [], reschedule: [], activated: [], extended: [] });
  });

  it('makes a waiting key published for the lead time sign at once when none signs, and publishes a successor behind it', () => {
    const waiting = stored(3, scheduleKey(POLICY, NOW - POLICY.leadSeconds, NOW + 50));
    const plan = planLine([waiting], true, NOW, POLICY);
    expect(plan.activated).toEqual([3]);
    expect(plan.reschedule).toEqual([{ kid: 3, schedule: scheduleKey(POLICY, NOW - POLICY.leadSeconds, NOW) }]);
    expect(plan.create).toEqual([{ role: 'successor', schedule: scheduleKey(POLICY, NOW, NOW + POLICY.keyTtlSeconds) }]);
  });

  it('puts the key that retired last back to work until a young waiting key has been published for the lead time', () => {
    const retiredSchedule = { publishedAt: NOW - 5000, activatesAt: NOW - 4000, retiresAt: NOW - 400, exp: NOW + 200 };
    const retired = stored(1, retiredSchedule);
    const young = stored(2, scheduleKey(POLICY, NOW - 100, NOW + 500));
    const plan = planLine([retired, young], true, NOW, POLICY);
    const matureAt = NOW - 100 + POLICY.leadSeconds;
    expect(plan.extended).toEqual([1]);
    expect(plan.reschedule).toEqual([
      { kid: 1, schedule: { ...retiredSchedule, retiresAt: matureAt, exp: matureAt + POLICY.tokenTtlSeconds } },
      { kid: 2, schedule: scheduleKey(POLICY, NOW - 100, matureAt) },
    ]);
    expect(plan.create).toEqual([]);
  });

  it('keeps the active key signing longer when its successor was published late', () => {
    const active = stored(1, scheduleKey(POLICY, NOW - 3500, NOW - 3500));
    const late = stored(2, scheduleKey(POLICY, NOW - 10, active.retiresAt));
    const plan = planLine([active, late], true, NOW, POLICY);
    const activatesAt = NOW - 10 + POLICY.leadSeconds;
    expect(plan.extended).toEqual([1]);
    expect(plan.reschedule).toEqual([
      { kid: 1, schedule: { ...scheduleKey(POLICY, NOW - 3500, NOW - 3500), retiresAt: activatesAt, exp: activatesAt + POLICY.tokenTtlSeconds } },
      { kid: 2, schedule: scheduleKey(POLICY, NOW - 10, activatesAt) },
    ]);
  });

  it('never makes a waiting key sign before it was published, by a clock running behind', () => {
    // Published "in 20 s" by another process whose clock is ahead of this one's.
    const ahead = stored(4, scheduleKey(POLICY, NOW + 20, NOW + 1000));
    const plan = planLine([ahead], true, NOW, POLICY);
    expect(plan.activated).toEqual([4]);
    expect(plan.reschedule[0]).toEqual({ kid: 4, schedule: scheduleKey(POLICY, NOW + 20, NOW + 20) });
  });
});

describe('planRotation', () => {
  const active = stored(1, scheduleKey(POLICY, NOW - 100, NOW - 100));
  const waiting = stored(2, scheduleKey(POLICY, NOW - 100, active.retiresAt));

  it('publishes a key that signs after the lead time; the active key retires then, and waiting keys queue behind the new one', () => {
    const { successor, changes } = planRotation([active, waiting], NOW, POLICY, false);
    const activatesAt = NOW + POLICY.leadSeconds;
    const created = scheduleKey(POLICY, NOW, activatesAt);
    expect(successor).toEqual(created);
    expect(changes.create).toEqual([]);
    expect(changes.reschedule).toEqual([
      { kid: 1, schedule: { ...scheduleKey(POLICY, NOW - 100, NOW - 100), retiresAt: activatesAt, exp: activatesAt + POLICY.tokenTtlSeconds } },
      { kid: 2, schedule: scheduleKey(POLICY, NOW - 100, created.retiresAt) },
    ]);
  });

  it('publishes a key that signs after the lead time when none signs now, moving no stored key', () => {
    const { successor, changes } = planRotation([], NOW, POLICY, false);
    expect(successor).toEqual(scheduleKey(POLICY, NOW, NOW + POLICY.leadSeconds));
    expect(changes).toEqual({ create: [], reschedule: [], activated: [], extended: [] });
  });

  it('rotating at once keeps the old key published past its tokens by the time servers take to see it', () => {
    const { successor, changes } = planRotation([active], NOW, POLICY, true);
    expect(successor.activatesAt).toBe(NOW);
    expect(changes.reschedule).toEqual([{ kid: 1, schedule: { ...scheduleKey(POLICY, NOW - 100, NOW - 100), retiresAt: NOW, exp: NOW + POLICY.tokenTtlSeconds + ROTATION_SYNC_GRACE_SECONDS } }]);
  });
});
