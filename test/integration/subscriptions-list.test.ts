/**
 * GET /subscriptions: a page at a time by id, with a status filter, a customer's email and
 * `next_cursor`; unknown parameters refused naming them (src/http/routes/subscriptions.ts, subscriptions/service.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AmountMinor } from '../../src/kernel/money.ts';
import { createSubscription } from '../../src/subscriptions/record.ts';
import { subscriptionKeys } from '../../src/subscriptions/store/subscription-store.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { body, closeOpened, ms, setup } from '../support/subscription-http.ts';

afterEach(closeOpened);

interface Page {
  data: { id: string; status: string }[];
  next_cursor: string | null;
}

describe('GET /subscriptions', () => {
  it('pages by id, filters by status, refuses unknown parameters', async () => {
    const { call } = await setup('2025-01-15T00:00:00Z');
    const ids = ['ls-a', 'ls-b', 'ls-c', 'ls-d', 'ls-e'];
    for (const id of ids) {
      expect((await call('POST', '/subscriptions', body({ id }))).statusCode).toBe(201);
    }
    for (const id of ['ls-b', 'ls-d']) {
      expect((await call('POST', `/subscriptions/${id}/pause`, {})).statusCode).toBe(200);
    }

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await call(
        'GET',
        `/subscriptions?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.statusCode).toBe(200);
      const page = res.body as Page;
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((s) => s.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(ids);

    const paused = (await call('GET', '/subscriptions?status=paused')).body as Page;
    expect(paused.data.map((s) => s.id)).toEqual(['ls-b', 'ls-d']);
    expect(paused.next_cursor).toBeNull();

    const bad = await call('GET', '/subscriptions?state=paused&limit=0');
    expect(bad.statusCode).toBe(422);
    expect(JSON.stringify(bad.body)).toContain('state');
    expect(JSON.stringify(bad.body)).toContain('limit');
  });

  it("lists one customer's subscriptions by email, ignoring case, from an index older data gets on first use", async () => {
    const { call, h } = await setup('2025-01-15T00:00:00Z');
    const subs: [string, string][] = [
      ['em-a', 'Ada@Example.com'],
      ['em-b', 'bob@example.com'],
      ['em-c', 'ada@example.com'],
      ['em-d', 'ADA@EXAMPLE.COM'],
      ['em-e', 'carol@example.com'],
    ];
    for (const [id, email] of subs)
      expect(
        (await call('POST', '/subscriptions', body({ id, customer_email: email }))).statusCode,
      ).toBe(201);
    expect((await call('POST', '/subscriptions/em-c/pause', {})).statusCode).toBe(200);

    const byEmail = async (q: string) => {
      const res = await call('GET', `/subscriptions?${q}`);
      expect(res.statusCode, res.raw).toBe(200);
      return res.body as Page;
    };
    expect((await byEmail('customer_email=ada%40example.com')).data.map((s) => s.id)).toEqual([
      'em-a',
      'em-c',
      'em-d',
    ]);
    const first = await byEmail('customer_email=ADA%40example.com&limit=2');
    expect(first.data.map((s) => s.id)).toEqual(['em-a', 'em-c']);
    const rest = await byEmail(
      `customer_email=ada%40example.com&limit=2&cursor=${first.next_cursor}`,
    );
    expect(rest).toEqual({ data: [expect.objectContaining({ id: 'em-d' })], next_cursor: null });
    expect(
      (await byEmail('customer_email=ada%40example.com&status=paused')).data.map((s) => s.id),
    ).toEqual(['em-c']);
    expect((await byEmail('customer_email=nobody%40example.com')).data).toEqual([]);
    // Created once the index is built: the create's own step puts it in.
    expect(
      (
        await call(
          'POST',
          '/subscriptions',
          body({ id: 'em-f', customer_email: 'aDa@example.com' }),
        )
      ).statusCode,
    ).toBe(201);
    expect((await byEmail('customer_email=ada%40example.com')).data.map((s) => s.id)).toEqual([
      'em-a',
      'em-c',
      'em-d',
      'em-f',
    ]);
    const bad = await call('GET', '/subscriptions?customer_email=not-an-email');
    expect(bad.statusCode).toBe(422);
    expect(JSON.stringify(bad.body)).toContain('customer_email');

    // A deployment older than the index: its subscriptions are put in it on the first use, past
    // the first thousand too (1,000 more here, whose ids sort before these).
    const older = Array.from({ length: 1_000 }, (_, i) =>
      createSubscription(
        {
          id: `em-0${String(i).padStart(4, '0')}`,
          customerEmail: 'filler@example.com',
          cardTokenSealed: 'sealed',
          amount: 1500 as AmountMinor,
          currency: 'NGN',
          schedule: {
            anchor: '2025-02-01T08:00:00Z',
            timezone: 'UTC',
            interval: 'month',
            intervalCount: 1,
          },
          metadata: {},
        },
        ms('2025-01-15T00:00:00Z'),
      ),
    );
    expect((await h.app.subscriptions.createMany(older)).every(Boolean)).toBe(true);
    const k = subscriptionKeys(h.app.config.redis.prefix);
    const indexes = await h.app.redis.keys(`${k.byEmail('x').replace(/:[0-9a-f]+$/, '')}:*`);
    expect(indexes.length).toBeGreaterThanOrEqual(4);
    await h.app.redis.del(...indexes);
    expect((await byEmail('customer_email=bob%40example.com')).data.map((s) => s.id)).toEqual([
      'em-b',
    ]);
    expect(await h.app.redis.zcard(k.byEmailIndexed())).toBe(await h.app.redis.zcard(k.all()));
    // One written by a process of an older version (a rolling upgrade: no index write) after
    // that: found by the next list by email all the same.
    await h.app.redis.zrem(k.byEmail('carol@example.com'), 'em-e');
    await h.app.redis.zrem(k.byEmailIndexed(), 'em-e');
    expect((await byEmail('customer_email=carol%40example.com')).data.map((s) => s.id)).toEqual([
      'em-e',
    ]);
    expect(await h.app.redis.keys(`${k.byEmailMissing('*')}`)).toEqual([]);

    const cli = await runCliInProcess(h.app.config, [
      'subs',
      'list',
      '--email',
      'Ada@example.COM',
      '--json',
    ]);
    expect(cli.code, cli.err).toBe(0);
    expect((JSON.parse(cli.out) as { items: { id: string }[] }).items.map((s) => s.id)).toEqual([
      'em-a',
      'em-c',
      'em-d',
      'em-f',
    ]);
    const badCli = await runCliInProcess(h.app.config, ['subs', 'list', '--email', 'nope']);
    expect(badCli.code).toBe(2);
    expect(badCli.err).toContain('--email "nope" is not valid');
  });
});
