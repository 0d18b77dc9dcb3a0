/**
 * Changing a subscription (docs/subscriptions.md "Changing a subscription"): `PATCH
 * /subscriptions/:id` over HTTP and `billing subs update` (amount, card, currency, interval,
 * anchor, metadata, cancel_at_period_end), every bad input named by its field or flag, and the
 * test clock routes' input errors and live mode. The real workers, reconciler and subscriptions
 * scheduler role against the sandbox; a manual clock drives the ticks. The sandbox ledger is the
 * truth of what money moved.
 */
import { writeFile, rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { runCliInProcess } from '../support/cli-run.ts';
import { dunningJobId } from '../../src/subscriptions/jobs.ts';
import { until } from '../support/poll.ts';
import {
  body,
  caller,
  server,
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

describe('PATCH /subscriptions/:id', () => {
  it('changes amount and card from the next charge, names every bad field, and refuses a currency change while a charge is owed', async () => {
    const { sandbox, h, call } = await setup('2025-02-01T09:00:00Z', {
      DUNNING_SCHEDULE: '1d',
      DUNNING_EXHAUSTED: 'past_due',
    });
    expect(
      (await call('POST', '/subscriptions', body({ id: 'p1', amount: '20.51' }))).statusCode,
    ).toBe(201);
    await h.tick();
    // Declined (…51): in dunning, its retry a day away.
    await until(async () => (await h.subs.get('p1'))?.sub.dunning.length === 1, {
      what: 'p1 in dunning',
      timeoutMs: 10_000,
    });

    const invalid = await call('PATCH', '/subscriptions/p1', {
      amount: '-5',
      currency: 'XYZ',
      card_token: '4111 1111 1111 1111',
      interval: 'fortnight',
      interval_count: 0,
      anchor: '2025-03-01',
      metadata: { 'bad key': 'x' },
      timezone: 'Europe/London',
      colour: 'blue',
    });
    expect(invalid.statusCode).toBe(422);
    expect(invalid.body.error.code).toBe('invalid_subscription');
    expect(fieldsOf(invalid)).toEqual(
      [
        'amount',
        'anchor',
        'card_token',
        'colour',
        'currency',
        'interval',
        'interval_count',
        'metadata',
        'timezone',
      ].sort(),
    );
    expect(invalid.raw).not.toMatch(/4111/);
    // A metadata value follows the meta_ rule of every other input: at most 1024 characters.
    const long = await call('PATCH', '/subscriptions/p1', { metadata: { note: 'v'.repeat(1025) } });
    expect(long.statusCode).toBe(422);
    expect(long.body.error.details).toEqual([
      { field: 'metadata', message: 'meta_note is longer than 1024 characters' },
    ]);
    expect((await h.subs.get('p1'))?.sub.metadata).toEqual({});
    const empty = await call('PATCH', '/subscriptions/p1', {});
    expect(empty.statusCode).toBe(422);
    expect(empty.body.error.details[0].message).toMatch(/^nothing to change/);
    expect((await call('PATCH', '/subscriptions/nope', { amount: '1' })).statusCode).toBe(404);

    // Currency: only between periods (a charge is in dunning), and with an amount.
    const noAmount = await call('PATCH', '/subscriptions/p1', { currency: 'USD' });
    expect(noAmount.statusCode).toBe(422);
    expect(noAmount.body.error.details).toEqual([
      { field: 'amount', message: 'amount is required when currency changes' },
    ]);
    const owed = await call('PATCH', '/subscriptions/p1', { currency: 'USD', amount: '20' });
    expect(owed.statusCode).toBe(409);
    expect(owed.body.error.code).toBe('charge_open');

    // Amount and card from the next charge: the retry of February keeps February's money.
    const changed = await call('PATCH', '/subscriptions/p1', {
      amount: '25.00',
      card_token: 'tok_new_card_secret_77',
      metadata: { plan: 'gold' },
    });
    expect(changed.statusCode).toBe(200);
    expect(changed.body).toMatchObject({ amount_minor: 2500, metadata: { plan: 'gold' } });
    expect(changed.raw).not.toContain('tok_new_card_secret_77');
    const again = await call('PATCH', '/subscriptions/p1', {
      amount: '25',
      card_token: 'tok_new_card_secret_77',
    });
    expect(again.statusCode).toBe(200);
    const updates = (await eventsOf(h, 'p1')).filter((e) => e.type === 'subscription.updated');
    expect(updates).toEqual([
      expect.objectContaining({
        id: 'evt_sub_p1_updated_1',
        data: expect.objectContaining({
          changes: ['amount', 'card_token', 'metadata'],
          previous: { amount: 2051, metadata: {} },
        }),
      }),
    ]);
    expect(JSON.stringify(updates)).not.toContain('tok_new_card');

    // The retry runs a day later and declines again (the period's own amount): written off.
    h.clock.advance(DAY);
    const retry = await h.app.dispatcher
      .queue('subscriptions')
      .getJob(dunningJobId({ key: 'sub_p1_20250201' as never, step: 0, resumes: 0 }));
    await retry!.promote();
    await h.settle();
    await tickAt(h, '2025-03-01T08:00:00Z');
    expect(ledgerOf(sandbox, 'p1')).toEqual([
      ['sub_p1_20250201_1', 2051, 'failed'],
      ['sub_p1_20250201_2', 2051, 'failed'],
      ['sub_p1_20250301_1', 2500, 'success'],
    ]);
    const intent = await h.app.store.get('sub_p1_20250301');
    expect(
      intent?.payee.kind === 'charge' && h.app.sealer.unseal(intent.payee.cardTokenSealed),
    ).toBe('tok_new_card_secret_77');

    // Nothing owed any more: the currency may change now.
    const currency = await call('PATCH', '/subscriptions/p1', { currency: 'USD', amount: '30' });
    expect(currency.statusCode).toBe(200);
    expect(currency.body).toMatchObject({ currency: 'USD', amount_minor: 3000 });
  });

  it('changes the interval or the anchor from the next period, never shortening the one paid for', async () => {
    const { sandbox, h, call } = await setup('2025-01-31T10:00:00Z');
    await call('POST', '/subscriptions', body({ id: 'sch', anchor: '2025-01-31T09:00:00Z' }));
    for (const at of ['2025-01-31T10:00:00Z', '2025-02-28T09:00:00Z', '2025-03-31T09:00:00Z'])
      await tickAt(h, at);

    const early = await call('PATCH', '/subscriptions/sch', { anchor: '2025-04-10T09:00:00Z' });
    expect(early.statusCode).toBe(422);
    expect(early.body.error.details).toEqual([
      {
        field: 'anchor',
        message:
          'anchor must not be before 2025-04-30T09:00:00.000Z: the period paid for runs until then (there is no proration)',
      },
    ]);
    // Monthly on the 31st → quarterly from the next period (Apr 30), on the 31st's calendar.
    const quarterly = await call('PATCH', '/subscriptions/sch', { interval_count: 3 });
    expect(quarterly.body).toMatchObject({
      interval: 'month',
      interval_count: 3,
      anchor: '2025-01-31T09:00:00Z',
      next_period_start: '2025-04-30T09:00:00.000Z',
    });
    for (const at of ['2025-04-30T09:00:00Z', '2025-05-31T09:00:00Z', '2025-07-31T09:00:00Z'])
      await tickAt(h, at);
    // → weekly from a new anchor after the quarter paid for (Jul 31 – Oct 31), which lasts until it.
    const weekly = await call('PATCH', '/subscriptions/sch', {
      interval: 'week',
      interval_count: 1,
      anchor: '2025-11-03T09:00:00Z',
    });
    expect(weekly.statusCode).toBe(200);
    expect(weekly.body).toMatchObject({ next_period_start: '2025-11-03T09:00:00.000Z' });
    for (const at of ['2025-10-31T09:00:00Z', '2025-11-03T09:00:00Z', '2025-11-10T09:00:00Z'])
      await tickAt(h, at);
    expect(ledgerOf(sandbox, 'sch').map(([ref]) => ref)).toEqual([
      'sub_sch_20250131_1',
      'sub_sch_20250228_1',
      'sub_sch_20250331_1',
      'sub_sch_20250430_1',
      'sub_sch_20250731_1',
      'sub_sch_20251103_1',
      'sub_sch_20251110_1',
    ]);
    // Every outcome found its period, across the three schedules.
    const events = await eventsOf(h, 'sch');
    expect(events.filter((e) => e.type === 'subscription.renewed')).toHaveLength(7);
    expect((await h.subs.get('sch'))?.sub.currentPeriod).toMatchObject({
      start: ms('2025-11-10T09:00:00Z'),
      end: ms('2025-11-17T09:00:00Z'),
    });
    expect(
      events.filter((e) => e.type === 'subscription.updated').map((e) => e.data.changes),
    ).toEqual([['interval_count'], ['interval', 'interval_count', 'anchor']]);
  });
});

describe('test clocks outside test mode', () => {
  it('answer 403 test_mode_only; a subscription cannot name a clock', async () => {
    const { h } = await setup('2025-02-01T09:00:00Z');
    const live = caller(await server({ ...h.service, testMode: false }, h));
    for (const [method, url, payload] of [
      ['POST', '/test-clocks', { frozen_time: '2025-01-01T00:00:00Z' }],
      ['GET', '/test-clocks/clock_000000000000000000000000', undefined],
      [
        'POST',
        '/test-clocks/clock_000000000000000000000000/advance',
        { to: '2025-02-01T00:00:00Z' },
      ],
      ['DELETE', '/test-clocks/clock_000000000000000000000000', undefined],
    ] as const) {
      const res = await live(method, url, payload);
      expect(res.statusCode).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'test_mode_only' });
      expect(res.body.error.message).toMatch(/only in test mode/);
    }
    const sub = await live('POST', '/subscriptions', body({ id: 'lv', test_clock: 'clock_x' }));
    expect(sub.statusCode).toBe(422);
    expect(sub.body.error.details).toEqual([
      {
        field: 'test_clock',
        message: 'test clocks exist only in test mode (a sk_test_ SAYSWITCH_SECRET_KEY)',
      },
    ]);
  });

  it('in test mode: invalid input names its field, unknown clocks are 404/422', async () => {
    const { call } = await setup('2025-02-01T09:00:00Z');
    const bad = await call('POST', '/test-clocks', { frozen_time: 'yesterday', colour: 'red' });
    expect(bad.statusCode).toBe(422);
    expect(fieldsOf(bad)).toEqual(['colour', 'frozen_time']);
    const created = await call('POST', '/test-clocks', { frozen_time: '2025-01-01T00:00:00Z' });
    expect(created.statusCode).toBe(201);
    const back = await call('POST', `/test-clocks/${created.body.id}/advance`, {
      to: '2024-12-31T00:00:00Z',
    });
    expect(back.statusCode).toBe(422);
    expect(back.body.error.details[0].field).toBe('to');
    expect((await call('GET', '/test-clocks/clock_000000000000000000000000')).statusCode).toBe(404);
    const sub = await call('POST', '/subscriptions', body({ id: 'nc', test_clock: 'clock_nope' }));
    expect(sub.body.error.details).toEqual([
      { field: 'test_clock', message: 'test_clock "clock_nope" does not exist' },
    ]);
  });
});

describe('billing subs update | pause --resume-at | cancel --at-period-end | clock', () => {
  it('changes, schedules and refuses as the HTTP routes do, naming the flag', async () => {
    const { h, call } = await setup('2025-02-01T09:00:00Z');
    // Anchored in the future: a cancel at the period's end is due at the anchor, not at once.
    await call('POST', '/subscriptions', body({ id: 'cli1', anchor: '2025-02-08T08:00:00Z' }));
    const run = (...args: string[]) => runCliInProcess(h.app.config, args, { clock: h.clock });
    const tokenFile = `${process.env.TMPDIR ?? '/tmp'}/subs-token-${process.pid}.txt`;
    await writeFile(tokenFile, 'tok_cli_new_card_9\n');
    try {
      const updated = await run(
        'subs',
        'update',
        'cli1',
        '--amount',
        '20.00',
        '--meta',
        'plan=gold',
        '--card-token-file',
        tokenFile,
        '--json',
      );
      expect(updated.code).toBe(0);
      expect(JSON.parse(updated.out)).toMatchObject({
        amount_minor: 2000,
        metadata: { plan: 'gold' },
        changed: true,
      });
      expect(updated.out + updated.err).not.toContain('tok_cli_new_card_9');
    } finally {
      await rm(tokenFile, { force: true });
    }
    const bad = await run('subs', 'update', 'cli1', '--interval', 'fortnight', '--anchor', 'soon');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--interval: interval "fortnight" must be one of');
    expect(bad.err).toContain('--anchor: anchor "soon" must be an ISO 8601 instant');
    const trial = await run('subs', 'update', 'cli1', '--trial-end', 'soon');
    expect(trial.code).toBe(2);
    expect(trial.err).toContain('--trial-end: trial_end "soon" must be now or an ISO 8601 instant');
    const noTrial = await run('subs', 'update', 'cli1', '--trial-end', 'now');
    expect(noTrial.code).toBe(2);
    expect(noTrial.err).toContain('--trial-end: this subscription has no trial');

    const cancel = await run('subs', 'cancel', 'cli1', '--at-period-end', '--json');
    expect(JSON.parse(cancel.out)).toMatchObject({ status: 'active', cancel_at_period_end: true });
    const keep = await run('subs', 'update', 'cli1', '--keep', '--json');
    expect(JSON.parse(keep.out)).toMatchObject({ cancel_at_period_end: false });

    const past = await run('subs', 'pause', 'cli1', '--resume-at', '2025-01-01T00:00:00Z');
    expect(past.code).toBe(2);
    expect(past.err).toContain('--resume-at: resume_at must be after');
    const paused = await run(
      'subs',
      'pause',
      'cli1',
      '--resume-at',
      '2025-03-01T00:00:00Z',
      '--json',
    );
    expect(JSON.parse(paused.out)).toMatchObject({
      status: 'paused',
      resume_at: '2025-03-01T00:00:00.000Z',
    });
    expect((await run('subs', 'show', 'cli1')).out).toContain(
      'resumes at      2025-03-01T00:00:00.000Z',
    );

    const clock = await run('subs', 'clock', 'create', '2025-01-01T00:00:00Z', '--json');
    expect(clock.code).toBe(0);
    const id = (JSON.parse(clock.out) as { id: string }).id;
    expect((await run('subs', 'clock', 'show', id)).out).toContain(
      `${id}  ready  2025-01-01T00:00:00.000Z`,
    );
    expect((await run('subs', 'clock', 'advance', id, '2024-01-01T00:00:00Z')).code).toBe(2);
    expect((await run('subs', 'clock', 'show', 'clock_000000000000000000000000')).code).toBe(2);
  });
});
