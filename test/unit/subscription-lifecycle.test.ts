/**
 * The lifecycle rules (rules 10-12; src/subscriptions/lifecycle.ts, actions.ts, changes.ts),
 * the test clock's pure rules (test-clocks.ts) and the management input (patch-input.ts), on
 * records built in memory.
 */
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import type { IntentKey } from '../../src/kernel/ids.ts';
import { amountMinor } from '../../src/kernel/money.ts';
import type { DunningEntry } from '../../src/subscriptions/entries.ts';
import {
  cancelSubscription,
  isRefusal,
  pauseSubscription,
  resumeSubscription,
  retryNow,
} from '../../src/subscriptions/actions.ts';
import { claimBilling, commitBilling, planBilling } from '../../src/subscriptions/billing.ts';
import { changeSubscription } from '../../src/subscriptions/changes.ts';
import { applyScheduled } from '../../src/subscriptions/lifecycle.ts';
import {
  parseCancelBody,
  parsePauseBody,
  parseSubscriptionPatch,
} from '../../src/subscriptions/patch-input.ts';
import { periodKey, startAt } from '../../src/subscriptions/periods.ts';
import {
  createSubscription,
  dueScore,
  nextChargeAt,
  type Decision,
  type Subscription,
} from '../../src/subscriptions/record.ts';
import {
  afterSettle,
  newClock,
  nextWake,
  pendingWork,
  startAdvance,
} from '../../src/subscriptions/test-clocks.ts';
import { toSubscriptionView } from '../../src/subscriptions/view.ts';

const DAY = 86_400_000;
const ms = (iso: string) => Date.parse(iso);
/** `sub()`'s creation instant. */
const now0 = '2025-01-20T00:00:00Z';

function sub(over: { trialEnd?: string; now?: string; testClock?: string } = {}): Subscription {
  const anchor = over.trialEnd ?? '2025-02-01T08:00:00Z';
  return createSubscription(
    {
      id: 's1',
      customerEmail: 'ada@example.com',
      cardTokenSealed: 'sealed-1',
      amount: amountMinor(1_000),
      currency: 'NGN',
      schedule: { anchor, timezone: 'UTC', interval: 'week', intervalCount: 1 },
      metadata: { plan: 'gold' },
      ...(over.trialEnd ? { trial: { end: ms(over.trialEnd), noticeMs: 3 * DAY } } : {}),
      ...(over.testClock ? { testClock: over.testClock } : {}),
    },
    ms(over.now ?? '2025-01-20T00:00:00Z'),
  );
}

function next(d: Decision | { refused: string }): Subscription {
  if ('refused' in d) throw new Error(`refused: ${JSON.stringify(d)}`);
  if (!d.next) throw new Error('no change');
  return d.next;
}

function decided(d: Decision | { refused: string }): Decision {
  if ('refused' in d) throw new Error(`refused: ${JSON.stringify(d)}`);
  return d;
}

/** Bills what is due at `now`, as a tick: claim, commit. */
function bill(s: Subscription, now: number): Subscription {
  const plan = planBilling(s, now, { catchUpMax: 12 });
  if (plan.kind !== 'bill') return s;
  return commitBilling(claimBilling(s, plan, { token: 't', now, leaseMs: 1 }), 't', 0, now)!;
}

describe('trials (rule 10)', () => {
  it('period 0 starts at the trial end; the notice is due TRIAL_WILL_END_NOTICE before, once', () => {
    const s = sub({ trialEnd: '2025-02-10T10:00:00Z' });
    expect(s).toMatchObject({ nextPeriod: 0, nextPeriodStart: ms('2025-02-10T10:00:00Z') });
    expect(s.trial).toEqual({
      end: ms('2025-02-10T10:00:00Z'),
      noticeAt: ms('2025-02-07T10:00:00Z'),
      noticed: false,
    });
    expect(dueScore(s)).toBe(ms('2025-02-07T10:00:00Z'));
    expect(applyScheduled(s, ms('2025-02-07T09:59:59Z'))).toEqual({ events: [], retries: [] });
    const d = applyScheduled(s, ms('2025-02-07T10:00:00Z'));
    expect(d.events).toEqual([
      expect.objectContaining({
        id: 'evt_sub_s1_trial_will_end',
        type: 'subscription.trial_will_end',
        data: expect.objectContaining({ nextChargeAt: ms('2025-02-10T10:00:00Z') }),
      }),
    ]);
    const noticed = next(d);
    expect(dueScore(noticed)).toBe(ms('2025-02-10T10:00:00Z'));
    expect(applyScheduled(noticed, ms('2025-02-08T00:00:00Z')).next).toBeUndefined();
    expect(planBilling(noticed, ms('2025-02-10T09:59:59Z'), { catchUpMax: 12 }).kind).toBe('wait');
    expect(periodKey(noticed, 0)).toBe('sub_s1_20250210');
  });

  it('a notice found due only after the trial ended is passed over, not sent', () => {
    const s = sub({ trialEnd: '2025-02-10T10:00:00Z' });
    const late = applyScheduled(s, ms('2025-02-11T00:00:00Z'));
    expect(late.events).toEqual([]);
    expect(next(late).trial?.noticed).toBe(true);
  });
});

describe('a new end of the trial (PATCH trial_end)', () => {
  const end = '2025-02-10T10:00:00Z';
  const refusal = (d: ReturnType<typeof changeSubscription>) =>
    'refused' in d && d.refused === 'invalid' ? d.issues[0] : d;

  it('moves period 0, the anchor and the notice with it; nothing is billed before the new end', () => {
    const s = sub({ trialEnd: end });
    const d = decided(changeSubscription(s, { trialEnd: '2025-02-17T10:00:00+01:00' }, ms(now0)));
    const moved = next(d);
    const newEnd = ms('2025-02-17T09:00:00Z');
    expect(moved.trial).toEqual({ end: newEnd, noticeAt: newEnd - 3 * DAY, noticed: false });
    expect(moved).toMatchObject({ nextPeriod: 0, nextPeriodStart: newEnd });
    expect(moved.schedule.anchor).toBe('2025-02-17T09:00:00Z');
    expect(dueScore(moved)).toBe(newEnd - 3 * DAY);
    expect(d.events).toEqual([
      expect.objectContaining({
        type: 'subscription.updated',
        data: expect.objectContaining({
          changes: ['trial_end', 'anchor'],
          previous: { trial_end: '2025-02-10T10:00:00.000Z', anchor: '2025-02-10T10:00:00Z' },
        }),
      }),
    ]);
    // The old end bills nothing; the new one bills period 0 under the new end's date.
    expect(planBilling(moved, ms(end) + DAY, { catchUpMax: 12 }).kind).toBe('wait');
    const billed = bill(next(applyScheduled(moved, newEnd)), newEnd);
    expect(billed.nextPeriod).toBe(1);
    expect(periodKey(billed, 0)).toBe('sub_s1_20250217');
    expect(toSubscriptionView(moved).trial_end).toBe('2025-02-17T09:00:00.000Z');
  });

  it('a notice already sent is sent again for the new end, under a new id', () => {
    const noticed = next(applyScheduled(sub({ trialEnd: end }), ms('2025-02-08T00:00:00Z')));
    expect(noticed.trial?.noticed).toBe(true);
    const at = ms('2025-02-09T00:00:00Z');
    const moved = next(changeSubscription(noticed, { trialEnd: '2025-03-01T10:00:00Z' }, at));
    expect(moved.trial).toMatchObject({ noticed: false, notices: 1 });
    expect(dueScore(moved)).toBe(ms('2025-02-26T10:00:00Z'));
    const again = applyScheduled(moved, ms('2025-02-26T10:00:00Z'));
    expect(again.events).toEqual([
      expect.objectContaining({
        id: 'evt_sub_s1_trial_will_end_2',
        data: expect.objectContaining({ trialEnd: ms('2025-03-01T10:00:00Z') }),
      }),
    ]);
    // Moved once more after the second notice: the third has its own id.
    const twice = next(
      changeSubscription(
        next(again),
        { trialEnd: '2025-03-05T10:00:00Z' },
        ms('2025-02-27T00:00:00Z'),
      ),
    );
    expect(twice.trial).toMatchObject({ noticed: false, notices: 2 });
    expect(applyScheduled(twice, ms('2025-03-02T10:00:00Z')).events[0]?.id).toBe(
      'evt_sub_s1_trial_will_end_3',
    );
  });

  it('a shorter trial whose notice time has passed gets its notice at the next tick', () => {
    const s = sub({ trialEnd: end });
    const at = ms('2025-02-05T00:00:00Z');
    const moved = next(changeSubscription(s, { trialEnd: '2025-02-06T00:00:00Z' }, at));
    expect(dueScore(moved)).toBeLessThanOrEqual(at);
    expect(applyScheduled(moved, at).events[0]).toMatchObject({
      id: 'evt_sub_s1_trial_will_end',
      data: expect.objectContaining({ trialEnd: ms('2025-02-06T00:00:00Z') }),
    });
  });

  it('now ends the trial now (to the second): billed at the next tick, no notice', () => {
    const s = sub({ trialEnd: end });
    const at = ms('2025-02-05T12:34:56.789Z');
    const moved = next(changeSubscription(s, { trialEnd: 'now' }, at));
    expect(moved.trial?.end).toBe(ms('2025-02-05T12:34:56Z'));
    expect(moved.nextPeriodStart).toBe(ms('2025-02-05T12:34:56Z'));
    expect(moved.schedule.anchor).toBe('2025-02-05T12:34:56Z');
    const ticked = applyScheduled(moved, at);
    expect(ticked.events).toEqual([]);
    expect(next(ticked).trial?.noticed).toBe(true);
    const billed = bill(next(ticked), at);
    expect(billed.nextPeriod).toBe(1);
    expect(periodKey(billed, 0)).toBe('sub_s1_20250205');
  });

  it('refuses a subscription without a trial, a trial that ended, a past end and another anchor', () => {
    const at = ms(now0);
    expect(refusal(changeSubscription(sub(), { trialEnd: 'now' }, at))).toMatchObject({
      field: 'trial_end',
      message: expect.stringContaining('has no trial'),
    });
    const s = sub({ trialEnd: end });
    expect(refusal(changeSubscription(s, { trialEnd: 'now' }, ms(end)))).toMatchObject({
      field: 'trial_end',
      message: expect.stringContaining('the trial ended at 2025-02-10T10:00:00.000Z'),
    });
    expect(refusal(changeSubscription(s, { trialEnd: '2025-01-19T00:00:00Z' }, at))).toMatchObject({
      field: 'trial_end',
      message: expect.stringContaining('must not be before'),
    });
    expect(
      refusal(
        changeSubscription(
          s,
          { trialEnd: '2025-02-12T00:00:00Z', anchor: '2025-02-13T00:00:00Z' },
          at,
        ),
      ),
    ).toMatchObject({ field: 'anchor' });
    // The same instant as anchor is accepted; the same end as now is no change.
    expect(
      next(
        changeSubscription(
          s,
          { trialEnd: '2025-02-12T00:00:00Z', anchor: '2025-02-12T01:00:00+01:00' },
          at,
        ),
      ).nextPeriodStart,
    ).toBe(ms('2025-02-12T00:00:00Z'));
    expect(changeSubscription(s, { trialEnd: end }, at)).toEqual({ events: [], retries: [] });
    const claimed = { ...s, claim: { token: 'x', from: 0, next: 1, until: at + 1_000 } };
    expect(changeSubscription(claimed, { trialEnd: 'now' }, at)).toEqual({ refused: 'busy' });
  });

  it('a trial moved twice before its second notice keeps the numbering: the notice is _2', () => {
    const noticed = next(applyScheduled(sub({ trialEnd: end }), ms('2025-02-08T00:00:00Z')));
    const once = next(
      changeSubscription(noticed, { trialEnd: '2025-03-01T10:00:00Z' }, ms('2025-02-09T00:00:00Z')),
    );
    const twice = next(
      changeSubscription(once, { trialEnd: '2025-03-05T10:00:00Z' }, ms('2025-02-10T00:00:00Z')),
    );
    expect(twice.trial).toMatchObject({ noticed: false, notices: 1 });
    expect(applyScheduled(twice, ms('2025-03-02T10:00:00Z')).events[0]?.id).toBe(
      'evt_sub_s1_trial_will_end_2',
    );
  });

  it('now with an anchor in the future is refused on anchor (the first period starts now)', () => {
    const at = ms('2025-02-05T12:00:00Z');
    expect(
      refusal(
        changeSubscription(
          sub({ trialEnd: end }),
          { trialEnd: 'now', anchor: '2025-03-01T00:00:00Z' },
          at,
        ),
      ),
    ).toMatchObject({ field: 'anchor', message: expect.stringContaining('the same instant') });
  });

  it('a paused trial moves too; the interval may change with it', () => {
    const s = next(pauseSubscription(sub({ trialEnd: end }), ms(now0)));
    const moved = next(
      changeSubscription(s, { trialEnd: '2025-02-20T10:00:00Z', interval: 'month' }, ms(now0)),
    );
    expect(moved.status).toBe('paused');
    expect(moved.schedule).toMatchObject({ anchor: '2025-02-20T10:00:00Z', interval: 'month' });
    expect(moved.nextPeriodStart).toBe(ms('2025-02-20T10:00:00Z'));
  });
});

describe('retry now (POST /subscriptions/:id/retry)', () => {
  const at = ms('2025-02-01T12:00:00Z');
  const inDunning = (over: Partial<DunningEntry> = {}): Subscription => ({
    ...sub(),
    status: 'past_due',
    nextPeriod: 1,
    dunning: [
      {
        key: 'sub_s1_20250201' as IntentKey,
        period: 0,
        attempt: 1,
        step: 0,
        failedAt: ms('2025-02-01T08:00:00Z'),
        dueAt: ms('2025-02-02T08:00:00Z'),
        reason: 'Declined',
        ...over,
      },
    ],
  });

  it('makes the next retry due now under fresh job ids, marked for the tick to re-add', () => {
    const s = inDunning();
    const d = decided(retryNow(s, at));
    const n = next(d);
    expect(n.dunning[0]).toMatchObject({ step: 0, attempt: 1, dueAt: at });
    expect(n).toMatchObject({ resumes: s.resumes + 1, rearmDunning: true, updates: s.updates + 1 });
    expect(d.retries).toEqual([
      expect.objectContaining({ key: 'sub_s1_20250201', step: 0, dueAt: at, resumes: 1 }),
    ]);
    expect(d.events).toEqual([
      expect.objectContaining({
        id: 'evt_sub_s1_updated_1',
        type: 'subscription.updated',
        data: expect.objectContaining({
          changes: ['retry_at'],
          previous: { retry_at: '2025-02-02T08:00:00.000Z' },
          retryAt: at,
        }),
      }),
    ]);
    expect(dueScore(n)).toBe(at);
  });

  it('changes nothing when the retry is already due or being opened', () => {
    expect(retryNow(inDunning({ dueAt: at - 1 }), at)).toEqual({ events: [], retries: [] });
    expect(retryNow(inDunning({ opening: 2 }), at)).toEqual({ events: [], retries: [] });
    // Due exactly now is due: no change, no new job ids.
    expect(retryNow(inDunning({ dueAt: at }), at)).toEqual({ events: [], retries: [] });
  });

  it('makes every period in dunning due now, not only the first', () => {
    const s = inDunning();
    const two: Subscription = {
      ...s,
      nextPeriod: 2,
      dunning: [
        ...s.dunning,
        {
          key: 'sub_s1_20250301' as IntentKey,
          period: 1,
          attempt: 1,
          step: 0,
          failedAt: ms('2025-02-01T09:00:00Z'),
          dueAt: ms('2025-02-03T08:00:00Z'),
          reason: 'Declined',
        },
      ],
    };
    const d = decided(retryNow(two, at));
    expect(next(d).dunning.map((e) => e.dueAt)).toEqual([at, at]);
    expect(d.retries.map((r) => [r.key, r.dueAt])).toEqual([
      ['sub_s1_20250201', at],
      ['sub_s1_20250301', at],
    ]);
  });

  it('refuses a canceled or paused subscription and one with no failed renewal', () => {
    expect(retryNow({ ...inDunning(), status: 'canceled' }, at)).toEqual({ refused: 'canceled' });
    expect(retryNow({ ...inDunning(), status: 'paused' }, at)).toEqual({ refused: 'paused' });
    expect(retryNow(sub(), at)).toEqual({ refused: 'nothing_to_retry' });
  });
});

describe('pause until, and cancel at the period end (rules 8, 12)', () => {
  const t0 = ms('2025-02-01T08:00:00Z');

  it('pause with resume_at resumes by itself, as of resume_at; a resume_at in the past is refused', () => {
    const s = bill(sub(), t0);
    const refused = pauseSubscription(s, t0 + 1, { resumeAt: t0 });
    expect(isRefusal(refused) && refused.refused).toBe('invalid');
    const p = decided(pauseSubscription(s, t0 + 1, { resumeAt: ms('2025-03-04T00:00:00Z') }));
    const paused = next(p);
    expect(p.events).toEqual([
      expect.objectContaining({ id: 'evt_sub_s1_paused_1', type: 'subscription.paused' }),
    ]);
    expect(dueScore(paused)).toBe(ms('2025-03-04T00:00:00Z'));
    expect(nextChargeAt(paused)).toBeNull();
    // A tick late by a day still resumes as of resume_at: billing from the period containing it.
    const r = applyScheduled(paused, ms('2025-03-05T00:00:00Z'));
    const resumed = next(r);
    expect(r.events).toEqual([
      expect.objectContaining({
        id: 'evt_sub_s1_resumed_1',
        at: ms('2025-03-04T00:00:00Z'),
        data: expect.objectContaining({ scheduled: true }),
      }),
    ]);
    expect(resumed).toMatchObject({
      status: 'active',
      nextPeriodStart: ms('2025-03-01T08:00:00Z'),
    });
    expect(resumed.resumeAt).toBeUndefined();
    // Pausing again changes resume_at (updated) or clears it (null).
    const again = next(pauseSubscription(resumed, t0 + 40 * DAY));
    const moved = decided(pauseSubscription(again, t0 + 41 * DAY, { resumeAt: t0 + 60 * DAY }));
    expect(moved.events[0]).toMatchObject({
      type: 'subscription.updated',
      data: { changes: ['resume_at'], previous: { resume_at: null } },
    });
    const cleared = next(pauseSubscription(next(moved), t0 + 42 * DAY, { resumeAt: null }));
    expect(cleared.resumeAt).toBeUndefined();
    expect(pauseSubscription(cleared, t0 + 43 * DAY)).toEqual({ events: [], retries: [] });
  });

  it('cancel at the period end bills nothing more and cancels when the period paid for ends', () => {
    const s = bill(sub(), t0);
    const d = cancelSubscription(s, t0 + DAY, { atPeriodEnd: true });
    const pending = next(d);
    expect(d.events[0]).toMatchObject({
      type: 'subscription.updated',
      data: { changes: ['cancel_at_period_end'], cancelAt: ms('2025-02-08T08:00:00Z') },
    });
    expect(pending.status).toBe('active');
    expect(nextChargeAt(pending)).toBeNull();
    expect(dueScore(pending)).toBe(ms('2025-02-08T08:00:00Z'));
    expect(planBilling(pending, ms('2025-02-08T08:00:00Z'), { catchUpMax: 12 }).kind).toBe('idle');
    expect(cancelSubscription(pending, t0 + 2 * DAY, { atPeriodEnd: true })).toEqual({
      events: [],
      retries: [],
    });
    const c = applyScheduled(pending, ms('2025-02-08T08:00:00Z'));
    expect(next(c)).toMatchObject({ status: 'canceled', canceledAt: ms('2025-02-08T08:00:00Z') });
    expect(c.events).toEqual([
      expect.objectContaining({
        id: 'evt_sub_s1_canceled',
        data: expect.objectContaining({ reason: 'requested', atPeriodEnd: true }),
      }),
    ]);
    // Undone before then (PATCH cancel_at_period_end: false): billing goes on.
    const undone = next(changeSubscription(pending, { cancelAtPeriodEnd: false }, t0 + 2 * DAY));
    expect(undone.cancelAtPeriodEnd).toBeUndefined();
    expect(planBilling(undone, ms('2025-02-08T08:00:00Z'), { catchUpMax: 12 }).kind).toBe('bill');
  });

  it('scheduled actions due together apply in the order of their instants', () => {
    const s = bill(sub(), t0);
    const paused = next(pauseSubscription(s, t0 + 1, { resumeAt: ms('2025-03-04T00:00:00Z') }));
    const both = next(changeSubscription(paused, { cancelAtPeriodEnd: true }, t0 + 2));
    // The period paid for ended on Feb 8, before the resume on Mar 4: canceled, never resumed.
    const d = applyScheduled(both, ms('2025-03-10T00:00:00Z'));
    expect(d.events.map((e) => e.type)).toEqual(['subscription.canceled']);
    // Resumed on Feb 5, inside the period paid for, which then ends on Feb 8: resumed, then
    // canceled, nothing billed.
    const later = next(
      changeSubscription(
        next(
          pauseSubscription(bill(sub(), t0), t0 + 1, {
            resumeAt: ms('2025-02-05T00:00:00Z'),
          }),
        ),
        { cancelAtPeriodEnd: true },
        t0 + 2,
      ),
    );
    const d2 = applyScheduled(later, ms('2025-02-10T00:00:00Z'));
    expect(d2.events.map((e) => e.type)).toEqual(['subscription.resumed', 'subscription.canceled']);
    expect(d2.retries).toEqual([]);
  });
});

describe('changes (rule 11)', () => {
  const t0 = ms('2025-02-01T08:00:00Z');
  it('refuses what cannot change now and merges metadata', () => {
    const s = bill(sub(), t0);
    const key = periodKey(s, 0);
    const open = { ...s, openCharges: [{ key, period: 0 }] };
    expect(changeSubscription(open, { currency: 'USD', amount: amountMinor(5) }, t0)).toEqual({
      refused: 'charge_open',
    });
    const claimed = { ...s, claim: { token: 'x', from: 1, next: 2, until: t0 + 1_000 } };
    expect(changeSubscription(claimed, { intervalCount: 2 }, t0)).toEqual({ refused: 'busy' });
    expect(
      changeSubscription({ ...s, status: 'canceled' }, { amount: amountMinor(5) }, t0),
    ).toEqual({ refused: 'canceled' });
    const m = next(changeSubscription(s, { metadata: { plan: null, tier: 'b' } }, t0));
    expect(m.metadata).toEqual({ tier: 'b' });
    expect(changeSubscription(m, { metadata: { tier: 'b' }, amount: m.amount }, t0)).toEqual({
      events: [],
      retries: [],
    });
    const trial = sub({ trialEnd: '2025-02-10T10:00:00Z' });
    const r = changeSubscription(trial, { anchor: '2025-02-20T10:00:00Z' }, t0);
    expect('refused' in r && r.refused === 'invalid' && r.issues[0]?.field).toBe('anchor');
  });
});

describe('an anchor in any ISO 8601 form the input accepts', () => {
  // Monthly on the 31st in Lagos, periods Jan 31 to Apr 30 billed: the next one starts May 31.
  function paidThroughApril(): Subscription {
    let s = createSubscription(
      {
        id: 'gym',
        customerEmail: 'ada@example.com',
        cardTokenSealed: 'sealed-1',
        amount: amountMinor(1_500_000),
        currency: 'NGN',
        schedule: {
          anchor: '2025-01-31T08:00Z',
          timezone: 'Africa/Lagos',
          interval: 'month',
          intervalCount: 1,
        },
        metadata: {},
      },
      ms('2025-01-30T00:00:00Z'),
    );
    for (const at of ['2025-01-31', '2025-02-28', '2025-03-31', '2025-04-30'])
      s = bill(s, ms(`${at}T08:00:00Z`));
    return s;
  }
  const may10 = ms('2025-05-10T00:00:00Z');
  const patched = (anchor: string) => {
    const p = parseSubscriptionPatch({ anchor });
    if (!p.ok) throw new Error(`refused: ${JSON.stringify(p.issues)}`);
    return changeSubscription(paidThroughApril(), p.input, may10);
  };

  it('refuses an anchor before the period paid for in every form, not only the extended one', () => {
    expect(paidThroughApril().nextPeriodStart).toBe(ms('2025-05-31T08:00:00Z'));
    // March 15th 09:00 in Lagos: no minutes in the offset, basic format, an ordinal date.
    for (const anchor of [
      '2025-03-15T09:00:00+01:00',
      '2025-03-15T09:00:00+01',
      '20250315T090000+0100',
      '2025-074T09:00:00+01:00',
    ]) {
      const d = patched(anchor);
      expect('refused' in d && d.refused === 'invalid' && d.issues, anchor).toEqual([
        {
          field: 'anchor',
          message:
            'anchor must not be before 2025-05-31T08:00:00.000Z: the period paid for runs until then (there is no proration)',
        },
      ]);
    }
  });

  it('stores and shows the anchor as RFC 3339 in the subscription zone', () => {
    const moved = next(patched('2025-06-15T08:00Z'));
    expect(moved.schedule.anchor).toBe('2025-06-15T09:00:00+01:00');
    expect(toSubscriptionView(moved).anchor).toBe('2025-06-15T09:00:00+01:00');
    // A record stored before anchors were written out in one form is shown in it too.
    expect(toSubscriptionView(paidThroughApril()).anchor).toBe('2025-01-31T09:00:00+01:00');
    // The same instant in another form is no change.
    expect(patched('2025-01-31T09:00+01')).toEqual({ events: [], retries: [] });
  });
});

describe('a new interval without an anchor keeps the day of the month and the time of day', () => {
  /** Monthly from `anchor` in `timezone`, periods before `billed` paid for. */
  function monthly(anchor: string, timezone: string, billed: number): Subscription {
    const s = createSubscription(
      {
        id: 'cal',
        customerEmail: 'ada@example.com',
        cardTokenSealed: 'sealed-1',
        amount: amountMinor(1_000),
        currency: 'NGN',
        schedule: { anchor, timezone, interval: 'month', intervalCount: 1 },
        metadata: {},
      },
      Date.parse(anchor) - DAY,
    );
    return { ...s, nextPeriod: billed, nextPeriodStart: startAt(s, billed) };
  }
  /** The local starts of periods `from`… of `s`. */
  const local = (s: Subscription, from: number, count: number) =>
    Array.from({ length: count }, (_, i) =>
      DateTime.fromMillis(startAt(s, from + i), { zone: s.schedule.timezone }).toFormat(
        'yyyy-MM-dd HH:mm',
      ),
    );

  it('monthly on the 31st, paid through January, becomes quarterly on the 31st from Feb 28', () => {
    const s = monthly('2025-01-31T09:00:00+01:00', 'Africa/Lagos', 1);
    const moved = next(changeSubscription(s, { intervalCount: 3 }, ms('2025-02-10T00:00:00Z')));
    expect(local(moved, 1, 5)).toEqual([
      '2025-02-28 09:00',
      '2025-05-31 09:00',
      '2025-08-31 09:00',
      '2025-11-30 09:00',
      '2026-02-28 09:00',
    ]);
    // The paid period's key is unchanged, and the boundary's period keeps its date.
    expect(periodKey(moved, 0)).toBe(periodKey(s, 0));
    expect(periodKey(moved, 1)).toBe(periodKey(s, 1));
  });

  it('a 02:30 plan whose boundary fell in the spring-forward gap goes on at 02:30', () => {
    const s = monthly('2025-02-09T02:30:00-05:00', 'America/New_York', 1);
    const moved = next(changeSubscription(s, { intervalCount: 2 }, ms('2025-02-20T00:00:00Z')));
    expect(local(moved, 1, 4)).toEqual([
      '2025-03-09 03:30',
      '2025-05-09 02:30',
      '2025-07-09 02:30',
      '2025-09-09 02:30',
    ]);
  });

  it('monthly to n months (1-6): every later period is on the anchor day (clamped) at its time', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 28, max: 31 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 30 }),
        fc.constantFrom('Africa/Lagos', 'America/New_York', 'Australia/Lord_Howe'),
        (day, oldCount, newCount, billed, zone) => {
          const anchor = DateTime.fromObject(
            { year: 2024, month: 1, day, hour: 9, minute: 15 },
            { zone },
          ).toISO()!;
          const s0 = monthly(anchor, zone, billed);
          const s =
            oldCount === 1
              ? s0
              : next(changeSubscription(s0, { intervalCount: oldCount }, s0.nextPeriodStart - DAY));
          if (s.schedule.intervalCount !== oldCount || newCount === oldCount) return;
          const moved = next(
            changeSubscription(s, { intervalCount: newCount }, s.nextPeriodStart - DAY),
          );
          expect(startAt(moved, moved.nextPeriod)).toBe(s.nextPeriodStart);
          for (let i = 1; i <= 8; i++) {
            const at = DateTime.fromMillis(startAt(moved, moved.nextPeriod + i), { zone });
            expect(at.day).toBe(Math.min(day, at.daysInMonth!));
            expect([at.hour, at.minute]).toEqual([9, 15]);
            const prev = DateTime.fromMillis(startAt(moved, moved.nextPeriod + i - 1), { zone });
            const months = (at.year - prev.year) * 12 + at.month - prev.month;
            expect(months).toBe(newCount);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('test clock rules', () => {
  const t = ms('2025-02-01T08:00:00Z');
  it('waits for charges in flight and unapplied outcomes, runs due retries, then moves to the next wake', () => {
    const s = bill(sub({ testClock: 'clock_1' }), t);
    const key = periodKey(s, 0);
    const open = { ...s, openCharges: [{ key, period: 0 }] };
    expect(
      pendingWork([open], new Map([[key, { state: 'queued', attempt: 1 }]]), t).busy,
    ).toHaveLength(1);
    expect(
      pendingWork([open], new Map([[key, { state: 'succeeded', attempt: 1 }]]), t).busy,
    ).toEqual([`${key} succeeded (outcome not applied yet)`]);
    // Waiting for the gateway (unknown, pending) is waited for; for a person (a challenge, a
    // review) is not: it holds billing by rule 9 whatever the clock does.
    expect(pendingWork([open], new Map([[key, { state: 'pending', attempt: 1 }]]), t).busy).toEqual(
      [`${key} pending`],
    );
    expect(
      pendingWork([open], new Map([[key, { state: 'requires_action', attempt: 1 }]]), t),
    ).toEqual({ busy: [], retries: [] });
    const dunning = {
      ...s,
      openCharges: [],
      status: 'past_due' as const,
      dunning: [
        {
          key,
          period: 0,
          attempt: 1,
          step: 0,
          failedAt: t,
          dueAt: t + DAY,
          reason: 'declined',
        },
      ],
    };
    const failed = new Map([[key, { state: 'failed' as const, attempt: 1 }]]);
    expect(pendingWork([dunning], failed, t)).toEqual({ busy: [], retries: [] });
    expect(pendingWork([dunning], failed, t + DAY).retries).toEqual([
      expect.objectContaining({ key, step: 0, testClock: 'clock_1' }),
    ]);
    expect(nextWake([dunning], t)).toBe(t + DAY);
    expect(nextWake([s], t)).toBe(ms('2025-02-08T08:00:00Z'));

    const clock = startAdvance(newClock('clock_1', t, 0), t + 10 * DAY);
    expect(clock).toMatchObject({ status: 'advancing', phase: 'tick', seq: 1 });
    expect(afterSettle({ ...clock, phase: 'settle' }, t + DAY)).toMatchObject({
      phase: 'tick',
      frozenTime: t + DAY,
      seq: 2,
    });
    expect(afterSettle({ ...clock, phase: 'settle' }, t + 20 * DAY)).toMatchObject({
      frozenTime: t + 10 * DAY,
    });
    const ready = afterSettle({ ...clock, frozenTime: t + 10 * DAY, phase: 'settle' }, undefined);
    expect(ready).toMatchObject({ status: 'ready', frozenTime: t + 10 * DAY });
    expect(ready.phase).toBeUndefined();
  });
});

describe('management input', () => {
  it('PATCH names every bad field and never repeats a card number', () => {
    const r = parseSubscriptionPatch({
      amount: 12,
      card_token: '4111-1111-1111-1111',
      interval_count: '400',
      customer_email: 'x@example.com',
      metadata: { ok: null, 'no good': 'x' },
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => i.field)).toEqual([
      'amount',
      'card_token',
      'interval_count',
      'customer_email',
      'metadata',
    ]);
    expect(JSON.stringify(r.issues)).not.toMatch(/4111/);
    expect(parseSubscriptionPatch({ interval_count: '2', metadata: { a: null } })).toEqual({
      ok: true,
      input: { intervalCount: 2, metadata: { a: null } },
    });
    expect(parseSubscriptionPatch([])).toEqual({
      ok: false,
      issues: [{ field: '(body)', message: 'the body must be a JSON object' }],
    });
  });

  it('PATCH names a field called like an Object.prototype member as unknown (it threw)', () => {
    for (const name of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__']) {
      const body = JSON.parse(`{"amount":"2000",${JSON.stringify(name)}:"x"}`) as unknown;
      const r = parseSubscriptionPatch(body);
      expect(r).toMatchObject({ ok: false, issues: [{ field: name }] });
    }
  });

  it('an instant beyond four-digit years, in any zone, is refused naming its field', () => {
    for (const at of [
      '+010000-01-01T00:00:00Z',
      '-000001-01-01T00:00:00Z',
      '9999-12-31T23:59:59Z',
    ]) {
      for (const field of ['anchor', 'trial_end'] as const) {
        expect(parseSubscriptionPatch({ [field]: at })).toEqual({
          ok: false,
          issues: [
            { field, message: `${field} "${at}" must be from 0001-01-02 to 9999-12-30 (UTC)` },
          ],
        });
      }
      expect(parsePauseBody({ resume_at: at })).toMatchObject({
        ok: false,
        issues: [{ field: 'resume_at', message: expect.stringContaining('9999-12-30') }],
      });
    }
    expect(parseSubscriptionPatch({ anchor: '9999-12-30T23:59:59Z' })).toMatchObject({ ok: true });
    expect(parsePauseBody({ resume_at: '0001-01-02T00:00:00Z' })).toMatchObject({ ok: true });
  });

  it('pause and cancel bodies', () => {
    expect(parsePauseBody(undefined)).toEqual({ ok: true });
    expect(parsePauseBody({ resume_at: null })).toEqual({ ok: true, resumeAt: null });
    expect(parsePauseBody({ resume_at: '2025-03-01T00:00:00+01:00' })).toEqual({
      ok: true,
      resumeAt: ms('2025-02-28T23:00:00Z'),
    });
    expect(parsePauseBody({ resume_at: 5 })).toMatchObject({
      ok: false,
      issues: [{ field: 'resume_at' }],
    });
    expect(parseCancelBody({})).toEqual({ ok: true });
    expect(parseCancelBody({ at_period_end: true })).toEqual({ ok: true, atPeriodEnd: true });
    expect(parseCancelBody({ when: 'later' })).toMatchObject({
      ok: false,
      issues: [{ field: 'when' }],
    });
  });
});

// `resumeSubscription` as the API calls it (requested), for completeness of the events.
describe('resume (rule 8)', () => {
  it('emits subscription.resumed with scheduled: false', () => {
    const t0 = ms('2025-02-01T08:00:00Z');
    const paused = next(pauseSubscription(bill(sub(), t0), t0 + 1));
    const r = resumeSubscription(paused, t0 + 2);
    expect(!isRefusal(r) && r.events[0]).toMatchObject({
      type: 'subscription.resumed',
      data: { scheduled: false },
    });
  });
});
