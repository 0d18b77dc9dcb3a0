/**
 * The subscription lifecycle over HTTP (docs/subscriptions.md "Trials", "Pause, resume,
 * cancel", "Outcomes and dunning"): trials, cancel at the period's end and its undo, pause with
 * `resume_at`, and dunning retries that keep their gaps after downtime. The real workers,
 * reconciler and subscriptions scheduler role against the sandbox; a manual clock drives the
 * ticks. The sandbox ledger is the truth of what money moved.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { dunningJobId } from '../../src/subscriptions/jobs.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { until } from '../support/poll.ts';
import {
  body,
  closeOpened,
  DAY,
  eventsOf,
  fieldsOf,
  ledgerOf,
  ms,
  setup,
  tickAt,
} from '../support/subscription-http.ts';

afterEach(closeOpened);

describe('trials', () => {
  it('bills nothing before trial_end, starts period 0 there, and announces its end TRIAL_WILL_END_NOTICE before', async () => {
    const { sandbox, h, call } = await setup('2025-02-01T00:00:00Z', {
      TRIAL_WILL_END_NOTICE: '2d',
    });
    const bad = await call(
      'POST',
      '/subscriptions',
      body({ id: 'tr-bad', anchor: '2025-02-20T00:00:00Z', trial_end: '2025-01-01T00:00:00Z' }),
    );
    expect(bad.statusCode).toBe(422);
    expect(fieldsOf(bad)).toEqual(['anchor']);
    const past = await call(
      'POST',
      '/subscriptions',
      body({ id: 'tr-past', anchor: undefined, trial_end: '2025-01-01T00:00:00Z' }),
    );
    expect(past.statusCode).toBe(422);
    expect(past.body.error.details).toEqual([
      { field: 'trial_end', message: 'trial_end must be after 2025-02-01T00:00:00.000Z' },
    ]);

    const created = await call(
      'POST',
      '/subscriptions',
      body({ id: 'tr', anchor: undefined, trial_end: '2025-02-15T10:00:00Z' }),
    );
    expect(created.statusCode).toBe(201);
    expect(created.body).toMatchObject({
      status: 'active',
      trial_end: '2025-02-15T10:00:00.000Z',
      anchor: '2025-02-15T10:00:00Z',
      next_charge_at: '2025-02-15T10:00:00.000Z',
    });

    expect((await tickAt(h, '2025-02-10T00:00:00Z')).created).toBe(0);
    expect((await eventsOf(h, 'tr')).map((e) => e.type)).toEqual(['subscription.created']);
    await tickAt(h, '2025-02-13T10:00:00Z');
    const notice = (await eventsOf(h, 'tr')).filter(
      (e) => e.type === 'subscription.trial_will_end',
    );
    expect(notice).toEqual([
      expect.objectContaining({
        id: 'evt_sub_tr_trial_will_end',
        at: ms('2025-02-13T10:00:00Z'),
        data: expect.objectContaining({ trialEnd: ms('2025-02-15T10:00:00Z') }),
      }),
    ]);
    expect(ledgerOf(sandbox, 'tr')).toEqual([]);
    expect((await tickAt(h, '2025-02-15T09:59:59Z')).created).toBe(0);
    expect((await tickAt(h, '2025-02-15T10:00:00Z')).created).toBe(1);
    await tickAt(h, '2025-03-15T10:00:00Z');
    expect(ledgerOf(sandbox, 'tr')).toEqual([
      ['sub_tr_20250215_1', 150_000, 'success'],
      ['sub_tr_20250315_1', 150_000, 'success'],
    ]);
    // Ticking again sends no second notice.
    await tickAt(h, '2025-03-16T00:00:00Z');
    expect(
      (await eventsOf(h, 'tr')).filter((e) => e.type === 'subscription.trial_will_end'),
    ).toHaveLength(1);
  });
});

describe('a new end of the trial', () => {
  it('PATCH trial_end moves the first charge and the notice; now ends the trial at the next tick', async () => {
    const { sandbox, h, call } = await setup('2025-02-01T00:00:00Z', {
      TRIAL_WILL_END_NOTICE: '2d',
    });
    const trial = (id: string, end: string) =>
      call('POST', '/subscriptions', body({ id, anchor: undefined, trial_end: end }));
    expect((await trial('te', '2025-02-10T10:00:00Z')).statusCode).toBe(201);
    expect((await trial('te-now', '2025-03-01T00:00:00Z')).statusCode).toBe(201);
    expect((await call('POST', '/subscriptions', body({ id: 'te-none' }))).statusCode).toBe(201);
    expect((await trial('te-due', '2025-02-20T00:00:00Z')).statusCode).toBe(201);

    // The notice for the first end goes out; then the trial is extended by a week.
    await tickAt(h, '2025-02-08T10:00:00Z');
    h.clock.set(ms('2025-02-09T00:00:00Z'));
    const past = await call('PATCH', '/subscriptions/te', { trial_end: '2025-02-08T00:00:00Z' });
    expect(past.statusCode).toBe(422);
    expect(past.body.error.details).toEqual([
      {
        field: 'trial_end',
        message:
          'trial_end must not be before 2025-02-09T00:00:00.000Z (give "now" to end the trial now)',
      },
    ]);
    const moved = await call('PATCH', '/subscriptions/te', {
      trial_end: '2025-02-17T11:00:00+01:00',
    });
    expect(moved.statusCode, moved.raw).toBe(200);
    expect(moved.body).toMatchObject({
      trial_end: '2025-02-17T10:00:00.000Z',
      anchor: '2025-02-17T10:00:00Z',
      next_charge_at: '2025-02-17T10:00:00.000Z',
    });

    // Nothing at the old end; a second notice (its own id) before the new one; period 0 then.
    expect((await tickAt(h, '2025-02-10T10:00:00Z')).created).toBe(0);
    expect(ledgerOf(sandbox, 'te')).toEqual([]);
    await tickAt(h, '2025-02-15T10:00:00Z');
    const notices = (await eventsOf(h, 'te')).filter(
      (e) => e.type === 'subscription.trial_will_end',
    );
    expect(notices.map((e) => [e.id, e.data.trialEnd])).toEqual([
      ['evt_sub_te_trial_will_end', ms('2025-02-10T10:00:00Z')],
      ['evt_sub_te_trial_will_end_2', ms('2025-02-17T10:00:00Z')],
    ]);
    expect((await tickAt(h, '2025-02-17T09:59:59Z')).created).toBe(0);
    expect((await tickAt(h, '2025-02-17T10:00:00Z')).created).toBe(1);
    expect(ledgerOf(sandbox, 'te')).toEqual([['sub_te_20250217_1', 150_000, 'success']]);
    const updated = (await eventsOf(h, 'te')).find((e) => e.type === 'subscription.updated');
    expect(updated?.data).toMatchObject({
      changes: ['trial_end', 'anchor'],
      previous: { trial_end: '2025-02-10T10:00:00.000Z', anchor: '2025-02-10T10:00:00Z' },
    });

    // The trial has ended: its end cannot change any more; nor can a subscription's without one.
    const ended = await call('PATCH', '/subscriptions/te', { trial_end: 'now' });
    expect(ended.statusCode).toBe(422);
    expect(ended.body.error.details[0].message).toContain('the trial ended at');
    const none = await call('PATCH', '/subscriptions/te-none', { trial_end: 'now' });
    expect(none.statusCode).toBe(422);
    expect(fieldsOf(none)).toEqual(['trial_end']);

    // now: the trial ends at once and the next tick bills period 0 on today's date, no notice.
    h.clock.set(ms('2025-02-18T08:30:00.250Z'));
    const now = await call('PATCH', '/subscriptions/te-now', { trial_end: 'now' });
    expect(now.statusCode, now.raw).toBe(200);
    expect(now.body).toMatchObject({ trial_end: '2025-02-18T08:30:00.000Z' });
    // te-due's notice (for Feb 20) fell due at Feb 18 00:00 and no tick sent it yet: the change
    // moves it with the end, it is not sent for the end being replaced first.
    const due = await call('PATCH', '/subscriptions/te-due', { trial_end: '2025-02-25T00:00:00Z' });
    expect(due.statusCode, due.raw).toBe(200);
    expect((await tickAt(h, '2025-02-18T08:31:00Z')).created).toBe(1);
    expect(ledgerOf(sandbox, 'te-now')).toEqual([['sub_te-now_20250218_1', 150_000, 'success']]);
    expect(
      (await eventsOf(h, 'te-now')).filter((e) => e.type === 'subscription.trial_will_end'),
    ).toEqual([]);
    const noticeOf = async (id: string) =>
      (await eventsOf(h, id))
        .filter((e) => e.type === 'subscription.trial_will_end')
        .map((e) => [e.id, e.data.trialEnd]);
    expect(await noticeOf('te-due')).toEqual([]);
    await tickAt(h, '2025-02-23T00:00:00Z');
    expect(await noticeOf('te-due')).toEqual([
      ['evt_sub_te-due_trial_will_end', ms('2025-02-25T00:00:00Z')],
    ]);
  });
});

describe('cancel at the period end', () => {
  it('stays active until the period paid for ends, can be undone, then cancels with no further charge', async () => {
    const { sandbox, h, call } = await setup('2025-02-01T09:00:00Z');
    await call('POST', '/subscriptions', body({ id: 'cpe', interval: 'week' }));
    await tickAt(h, '2025-02-01T09:00:00Z');

    const bad = await call('POST', '/subscriptions/cpe/cancel', { at_period_end: 'yes' });
    expect(bad.statusCode).toBe(422);
    expect(bad.body.error.details).toEqual([
      { field: 'at_period_end', message: 'at_period_end must be true or false' },
    ]);
    const scheduled = await call('POST', '/subscriptions/cpe/cancel', { at_period_end: true });
    expect(scheduled.body).toMatchObject({
      status: 'active',
      cancel_at_period_end: true,
      cancel_at: '2025-02-08T08:00:00.000Z',
      next_charge_at: null,
    });
    // Undone before the period ends: billing goes on.
    const undone = await call('PATCH', '/subscriptions/cpe', { cancel_at_period_end: false });
    expect(undone.body).toMatchObject({ cancel_at_period_end: false, cancel_at: null });
    await tickAt(h, '2025-02-08T08:00:00Z');
    // Set again: the period Feb 8 – Feb 15 is the last.
    await call('POST', '/subscriptions/cpe/cancel', { at_period_end: true });
    await tickAt(h, '2025-02-14T00:00:00Z');
    expect((await h.subs.get('cpe'))?.sub.status).toBe('active');
    const r = await tickAt(h, '2025-02-15T08:00:00Z');
    expect(r).toMatchObject({ created: 0, scheduled: 1 });
    expect(await call('GET', '/subscriptions/cpe')).toMatchObject({
      body: {
        status: 'canceled',
        cancel_reason: 'requested',
        canceled_at: '2025-02-15T08:00:00.000Z',
        cancel_at_period_end: false,
      },
    });
    await tickAt(h, '2025-03-01T08:00:00Z');
    expect(ledgerOf(sandbox, 'cpe').map(([ref]) => ref)).toEqual([
      'sub_cpe_20250201_1',
      'sub_cpe_20250208_1',
    ]);
    expect((await eventsOf(h, 'cpe')).map((e) => [e.type, e.id])).toEqual([
      ['subscription.created', 'evt_sub_cpe_created'],
      ['subscription.renewed', 'evt_sub_cpe_20250201_renewed'],
      ['subscription.updated', 'evt_sub_cpe_updated_1'],
      ['subscription.updated', 'evt_sub_cpe_updated_2'],
      ['subscription.renewed', 'evt_sub_cpe_20250208_renewed'],
      ['subscription.updated', 'evt_sub_cpe_updated_3'],
      ['subscription.canceled', 'evt_sub_cpe_canceled'],
    ]);
  });
});

describe('an action after a scheduled one fell due, before the tick ran it', () => {
  it('is decided on the subscription as it is by then: an undo after cancel_at is refused, and nothing more is charged', async () => {
    const { sandbox, h, call } = await setup('2025-01-30T00:00:00Z');
    await call('POST', '/subscriptions', body({ id: 'late', interval: 'week' }));
    await tickAt(h, '2025-02-01T09:00:00Z');
    const scheduled = await call('POST', '/subscriptions/late/cancel', { at_period_end: true });
    expect(scheduled.body).toMatchObject({ cancel_at: '2025-02-08T08:00:00.000Z' });
    // 30 s after cancel_at; the tick has not run.
    h.clock.set(ms('2025-02-08T08:00:30Z'));
    const undo = await call('PATCH', '/subscriptions/late', { cancel_at_period_end: false });
    expect(undo.statusCode).toBe(409);
    expect(undo.body.error.code).toBe('subscription_canceled');
    expect((await h.subs.get('late'))?.sub.status).toBe('active');
    // An action that is allowed (cancel again: nothing more to do) stores the cancel that fell
    // due, as the tick would have.
    const cancel = await call('POST', '/subscriptions/late/cancel', {});
    expect(cancel).toMatchObject({
      statusCode: 200,
      body: {
        status: 'canceled',
        cancel_reason: 'requested',
        canceled_at: '2025-02-08T08:00:30.000Z',
      },
    });
    await tickAt(h, '2025-02-08T08:01:00Z');
    expect((await call('GET', '/subscriptions/late')).body).toMatchObject({
      status: 'canceled',
      canceled_at: '2025-02-08T08:00:30.000Z',
    });
    expect((await eventsOf(h, 'late')).map((e) => e.type)).toEqual([
      'subscription.created',
      'subscription.renewed',
      'subscription.updated',
      'subscription.canceled',
    ]);
    expect(ledgerOf(sandbox, 'late').map(([ref]) => ref)).toEqual(['sub_late_20250201_1']);
  });

  it('a pause after resume_at passed starts from the resumed subscription', async () => {
    const { h, call } = await setup('2025-01-30T00:00:00Z');
    await call('POST', '/subscriptions', body({ id: 'res', interval: 'week' }));
    await tickAt(h, '2025-02-01T09:00:00Z');
    const paused = await call('POST', '/subscriptions/res/pause', {
      resume_at: '2025-02-05T00:00:00Z',
    });
    expect(paused.body).toMatchObject({ status: 'paused' });
    h.clock.set(ms('2025-02-06T00:00:00Z'));
    // Not "already paused, nothing changes": the scheduled resume happened on Feb 5, and this
    // pause is a new one, with no resume time.
    const again = await call('POST', '/subscriptions/res/pause', {});
    expect(again.statusCode).toBe(200);
    expect(again.body).toMatchObject({ status: 'paused', resume_at: null });
    expect((await eventsOf(h, 'res')).map((e) => e.type)).toEqual([
      'subscription.created',
      'subscription.renewed',
      'subscription.paused',
      'subscription.resumed',
      'subscription.paused',
    ]);
  });
});

describe('pause with resume_at', () => {
  it('bills no period while paused and resumes by itself at resume_at', async () => {
    const { sandbox, h, call } = await setup('2025-02-01T09:00:00Z');
    await call('POST', '/subscriptions', body({ id: 'pr', interval: 'week' }));
    await tickAt(h, '2025-02-01T09:00:00Z');

    const past = await call('POST', '/subscriptions/pr/pause', {
      resume_at: '2025-01-01T00:00:00Z',
    });
    expect(past.statusCode).toBe(422);
    expect(past.body.error.details).toEqual([
      { field: 'resume_at', message: 'resume_at must be after 2025-02-01T09:00:00.000Z' },
    ]);
    const unknown = await call('POST', '/subscriptions/pr/pause', { until: 'tomorrow' });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.body.error.details[0].field).toBe('until');
    const notInstant = await call('POST', '/subscriptions/pr/pause', { resume_at: '2025-03-01' });
    expect(notInstant.body.error.details[0].field).toBe('resume_at');

    const paused = await call('POST', '/subscriptions/pr/pause', {
      resume_at: '2025-03-03T00:00:00Z',
    });
    expect(paused.body).toMatchObject({
      status: 'paused',
      resume_at: '2025-03-03T00:00:00.000Z',
      next_charge_at: null,
    });
    // Moved: pausing again with another resume_at replaces it.
    const moved = await call('POST', '/subscriptions/pr/pause', {
      resume_at: '2025-03-04T00:00:00Z',
    });
    expect(moved.body).toMatchObject({ status: 'paused', resume_at: '2025-03-04T00:00:00.000Z' });
    for (const at of ['2025-02-08T08:00:00Z', '2025-02-22T08:00:00Z', '2025-03-03T12:00:00Z'])
      expect((await tickAt(h, at)).created).toBe(0);
    const resumed = await tickAt(h, '2025-03-04T00:00:00Z');
    expect(resumed).toMatchObject({ scheduled: 1, created: 1 });
    expect(await call('GET', '/subscriptions/pr')).toMatchObject({
      body: { status: 'active', resume_at: null },
    });
    await tickAt(h, '2025-03-08T08:00:00Z');
    // Feb 8 – Feb 22 passed while paused; Mar 1 (containing the resume) is billed at it.
    expect(ledgerOf(sandbox, 'pr').map(([ref]) => ref)).toEqual([
      'sub_pr_20250201_1',
      'sub_pr_20250301_1',
      'sub_pr_20250308_1',
    ]);
    const lifecycle = (await eventsOf(h, 'pr'))
      .filter((e) => !['subscription.renewed', 'subscription.created'].includes(e.type))
      .map((e) => [e.type, e.id, e.at]);
    expect(lifecycle).toEqual([
      ['subscription.paused', 'evt_sub_pr_paused_1', ms('2025-02-01T09:00:00Z')],
      ['subscription.updated', 'evt_sub_pr_updated_1', ms('2025-02-01T09:00:00Z')],
      ['subscription.resumed', 'evt_sub_pr_resumed_1', ms('2025-03-04T00:00:00Z')],
    ]);
  });
});

describe('retry now', () => {
  it('runs the scheduled retry of a failed renewal at once; the old delayed job then opens nothing', async () => {
    const { sandbox, h, call } = await setup('2025-02-01T09:00:00Z', {
      DUNNING_SCHEDULE: '1d,3d,5d,7d',
    });
    const view = (id: string) => call('GET', `/subscriptions/${id}`);
    await call('POST', '/subscriptions', body({ id: 'rn', amount: '20.51' }));
    await call('POST', '/subscriptions', body({ id: 'rn-ok' }));
    // A tick, not tickAt: its settle would wait for the delayed retry.
    await h.tick();
    const failed = await until(() => view('rn'), {
      done: (r) => r.body.status === 'past_due',
      what: 'rn past_due',
    });
    expect(failed.body.dunning[0]).toMatchObject({
      retry: 1,
      retry_at: '2025-02-02T09:00:00.000Z',
    });

    // Refused: nothing to retry, paused, canceled.
    const none = await call('POST', '/subscriptions/rn-ok/retry');
    expect(none.statusCode).toBe(409);
    expect(none.body.error).toMatchObject({
      code: 'nothing_to_retry',
      message: 'subscription rn-ok has no failed renewal to retry (it is in no dunning)',
    });

    h.clock.set(ms('2025-02-01T15:00:00Z'));
    const now = await call('POST', '/subscriptions/rn/retry');
    expect(now.statusCode, now.raw).toBe(200);
    expect(now.body.dunning[0]).toMatchObject({ retry: 1, retry_at: '2025-02-01T15:00:00.000Z' });
    // The retry runs at once (no clock move), is declined, and the next keeps its schedule.
    const second = await until(() => view('rn'), {
      done: (r) => r.body.dunning[0]?.retry === 2,
      what: 'retry 1 answered',
    });
    expect(second.body.dunning[0]).toMatchObject({
      attempt: 2,
      retry_at: '2025-02-04T09:00:00.000Z',
    });
    expect(ledgerOf(sandbox, 'rn').map(([ref, , status]) => [ref, status])).toEqual([
      ['sub_rn_20250201_1', 'failed'],
      ['sub_rn_20250201_2', 'failed'],
    ]);
    // The job first scheduled for retry 1 fires at its time and opens nothing.
    const queue = h.app.dispatcher.queue('subscriptions');
    const old = await queue.getJob(
      dunningJobId({ key: 'sub_rn_20250201' as never, step: 0, resumes: 0 }),
    );
    expect(old).toBeDefined();
    h.clock.set(ms('2025-02-02T09:00:00Z'));
    await old!.promote();
    await until(() => old!.getState(), { done: (st) => st === 'completed', what: 'old job done' });
    expect((await queue.getJob(old!.id!))?.returnvalue).toEqual({ skipped: 'stale' });
    expect(ledgerOf(sandbox, 'rn')).toHaveLength(2);

    await call('POST', '/subscriptions/rn/pause');
    const paused = await call('POST', '/subscriptions/rn/retry');
    expect(paused.statusCode).toBe(409);
    expect(paused.body.error).toMatchObject({
      code: 'subscription_paused',
      message: 'subscription rn is paused: resume it first (a paused subscription runs no retries)',
    });
    const run = (...args: string[]) => runCliInProcess(h.app.config, args, { clock: h.clock });
    const cli = await run('subs', 'retry', 'rn', '--json');
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.out)).toMatchObject({ error: { code: 'subscription_paused' } });
    await call('POST', '/subscriptions/rn/cancel');
    const canceled = await call('POST', '/subscriptions/rn/retry');
    expect(canceled.body.error).toMatchObject({
      code: 'subscription_canceled',
      message: 'subscription rn is canceled; it cannot be retried',
    });
    expect(ledgerOf(sandbox, 'rn')).toHaveLength(2);
  });
});

describe('dunning after downtime', () => {
  it('never fires a retry sooner than its gap after the previous one actually ran', async () => {
    const { sandbox, h, call } = await setup('2025-02-01T09:00:00Z', {
      DUNNING_SCHEDULE: '1d,3d,5d,7d',
    });
    await call('POST', '/subscriptions', body({ id: 'dt', amount: '20.51' }));
    await h.tick();
    const queue = h.app.dispatcher.queue('subscriptions');
    const job = (step: number) =>
      until(
        () => queue.getJob(dunningJobId({ key: 'sub_dt_20250201' as never, step, resumes: 0 })),
        {
          what: `retry ${step + 1} of sub_dt_20250201`,
          timeoutMs: 10_000,
        },
      );
    expect((await job(0)).opts.delay).toBe(DAY);
    // The scheduler was down for ten days: retry 1 runs ten days late and fails. Retries 2-4 were
    // nominally due 3, 5 and 7 days after the first failure (all past): each still waits its gap
    // (2 days) after the one before it actually ran.
    for (const [step, gap] of [
      [0, 0],
      [1, 2 * DAY],
      [2, 2 * DAY],
      [3, 2 * DAY],
    ] as const) {
      const j = await job(step);
      if (step > 0) expect(j.opts.delay).toBe(gap);
      h.clock.advance(step === 0 ? 11 * DAY : gap);
      await j.promote();
    }
    await h.settle();
    expect(ledgerOf(sandbox, 'dt').map(([ref, , status]) => [ref, status])).toEqual(
      [1, 2, 3, 4, 5].map((n) => [`sub_dt_20250201_${n}`, 'failed']),
    );
    const pastDue = (await eventsOf(h, 'dt'))
      .filter((e) => e.type === 'subscription.past_due')
      .map((e) => [
        (e.at - ms('2025-02-01T09:00:00Z')) / DAY,
        e.data.retryAt === undefined
          ? null
          : ((e.data.retryAt as number) - ms('2025-02-01T09:00:00Z')) / DAY,
      ]);
    expect(pastDue).toEqual([
      [0, 1],
      [11, 13],
      [13, 15],
      [15, 17],
    ]);
    expect((await h.subs.get('dt'))?.sub).toMatchObject({
      status: 'canceled',
      cancelReason: 'dunning_exhausted',
    });
  });
});
