/**
 * The amount maximum (kernel/money.ts, docs/product.md §6) against real Redis: Lua writes numbers
 * with 14 significant digits, so the largest accepted amount, 10^14 − 1 minor units, is the
 * largest that comes back exactly, and `POST /payments` refuses anything larger before Redis sees
 * it. At the maximum, the payment's event carries the amount to the minor unit.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMOUNT_MINOR_MAX } from '../../src/kernel/money.ts';
import { submitBatch } from '../../src/batches/ingest.ts';
import { readNotification } from '../../src/notifications/deliver.ts';
import { startAppBatchTracker, waitBatchCompleted } from '../support/batch-http.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { track } from '../support/leak-check.ts';
import { getRedisUrl } from '../support/redis.ts';

/** Nothing here reaches the gateway (no worker runs): no sandbox is needed. */
const GATEWAY_URL = 'http://127.0.0.1:9';

let t: TestApp;
let redis: Redis;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: GATEWAY_URL, roles: ['api'] });
  redis = track(new Redis(await getRedisUrl(), { maxRetriesPerRequest: null }), 'amount-max');
});

afterAll(async () => {
  await redis.quit();
  await t.close();
});

async function post(body: object) {
  const res = await fetch(`${t.url}/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_TOKEN}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const CHARGE = { type: 'charge', email: 'ada@example.com', currency: 'NGN', card_token: 'tok_abc' };

describe('the amount maximum', () => {
  it('is the largest amount Redis Lua writes back exactly (tostring and cjson.encode)', async () => {
    // No key is touched: the script only formats its argument.
    const script = `local n = tonumber(ARGV[1]) return { tostring(n), cjson.encode({ n = n }) }`;
    const atMax = (await redis.eval(script, 0, String(AMOUNT_MINOR_MAX))) as string[];
    expect(atMax).toEqual([String(AMOUNT_MINOR_MAX), `{"n":${AMOUNT_MINOR_MAX}}`]);
    const above = (await redis.eval(script, 0, '123456789012345')) as string[];
    expect(above[0]).not.toBe('123456789012345');
    expect(above[1]).not.toBe('{"n":123456789012345}');
  });

  it('POST /payments: the maximum is accepted and its event carries it exactly', async () => {
    const res = await post({ ...CHARGE, key: 'amount-at-max', amount: '999999999999.99' });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ key: 'api_amount-at-max', amountMinor: AMOUNT_MINOR_MAX });
    const moved = await t.app.store.transition('api_amount-at-max', 'failed', Date.now());
    expect(moved.ok).toBe(true);
    const amounts: unknown[] = [];
    for (const e of await t.app.events.read(undefined, 100)) {
      const n = await readNotification(t.app.events, e.streamId);
      if (n?.id.startsWith('evt_api_amount-at-max_')) amounts.push(n.data.amount);
    }
    expect(amounts).toEqual([AMOUNT_MINOR_MAX]);
  });

  it('batch.completed carries money totals past the maximum exactly (two rows at it)', async () => {
    const tracker = await startAppBatchTracker(t);
    try {
      const row = (ref: string) =>
        `${ref},0123456789,058,GTBank,Ada Obi,999999999999.99,NGN,at the maximum`;
      const input = `reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n${row('max-1')}\n${row('max-2')}\n`;
      const r = await submitBatch(t.app, { input, type: 'payout', id: 'amount-max' });
      expect(r.status).toBe('created');
      // No worker runs: the rows end `failed` straight from `queued`, as a cancel ends them.
      for (const key of await t.app.store.batchKeys('amount-max', 0, 10))
        expect((await t.app.store.transition(key, 'failed', Date.now())).ok).toBe(true);
      const done = await waitBatchCompleted(t, 'amount-max');
      expect(done.totals.NGN?.byState.failed.amountMinor).toBe(2 * AMOUNT_MINOR_MAX);
      const completed = (await t.app.events.read(undefined, 1000)).find(
        (e) => e.type === 'batch.completed' && e.data.batchId === 'amount-max',
      );
      // 199999999999998: 15 digits, which cjson would have written as 2e+14.
      expect(completed?.data.amounts).toEqual({ failed: { NGN: 2 * AMOUNT_MINOR_MAX } });
    } finally {
      await tracker.stop();
    }
  });

  it('POST /payments: one minor unit more is refused, naming the field and the maximum', async () => {
    for (const amount of ['1000000000000', '1000000000000.00', '1234567890123.45']) {
      const res = await post({ ...CHARGE, key: 'amount-above-max', amount });
      expect(res.status).toBe(422);
      expect(res.json).toEqual({
        error: {
          code: 'invalid_payment',
          message: 'the payment instruction is invalid',
          details: [
            {
              field: 'amount',
              message: `amount "${amount}" is more than the maximum, 999999999999.99`,
            },
          ],
        },
      });
    }
    expect(await t.app.store.get('api_amount-above-max')).toBeUndefined();
  });
});
