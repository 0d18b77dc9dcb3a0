/**
 * The most one batch may total in a currency (docs/batches.md, "Limits"): batch totals are JS
 * numbers, so a file whose valid rows in one currency add up to more than Number.MAX_SAFE_INTEGER
 * minor units (about 91 rows at the row maximum) is refused as a whole, naming the row and column
 * where the total passed it, with or without skip-invalid, and nothing reaches Redis. A file at the
 * maximum is accepted and its status shows the total to the minor unit. Real Redis, no worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { batchStatus } from '../../src/batches/status.ts';
import { AMOUNT_MINOR_MAX } from '../../src/kernel/money.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { uploadCsv } from '../support/batch-http.ts';

/** Nothing here reaches the gateway (no worker runs). */
const GATEWAY_URL = 'http://127.0.0.1:9';

const HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration';

/** A payout file: one row per amount, references `<tag>-<n>`. */
function payouts(tag: string, amounts: readonly string[]): string {
  const lines = amounts.map(
    (amount, i) => `${tag}-${i + 1},0123456789,058,GTBank,Ada Obi,${amount},NGN,max`,
  );
  return `${[HEADER, ...lines].join('\n')}\n`;
}

const ROW_MAX = '999999999999.99';
/** 91 rows at the maximum: 9,099,999,999,999,909 minor units, past 2^53 − 1. */
const OVER = Array.from({ length: 91 }, () => ROW_MAX);
const TOTAL_MAX = '90071992547409.91';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: GATEWAY_URL, roles: ['api'] });
});

afterAll(async () => {
  await t.close();
});

/** Every key of this test app's prefix that names batch `id` or a reference registry. */
async function batchKeysOf(id: string): Promise<string[]> {
  const own = await t.app.redis.keys(`${t.prefix}:batch:${id}*`);
  const refs = await t.app.redis.keys(`${t.prefix}:batch-refs:*`);
  return [...own, ...refs];
}

describe('a batch total past Number.MAX_SAFE_INTEGER minor units', () => {
  it('is refused as a whole, naming the row and column, and stores nothing', async () => {
    for (const skipInvalid of [false, true]) {
      const id = `total-over-${String(skipInvalid)}`;
      const r = await submitBatch(t.app, {
        input: payouts(id, OVER),
        type: 'payout',
        id,
        skipInvalid,
      });
      expect(r.status).toBe('invalid');
      expect(r.errorCount).toBe(1);
      // Header on line 1: the 91st row, on line 92, takes the NGN total past the maximum.
      expect(r.errors).toEqual([
        {
          line: 92,
          column: 'amount',
          message: `the file's NGN amounts pass ${TOTAL_MAX} at this row, the most one batch can total in one currency; split the file into smaller batches`,
        },
      ]);
      expect(r.message).toMatch(
        skipInvalid ? /--skip-invalid cannot apply; split the file/ : /nothing was enqueued/,
      );
      expect(r.batch).toBeUndefined();
      expect(await batchStatus(t.app, id)).toBeUndefined();
      expect(await batchKeysOf(id)).toEqual([]);
    }
  });

  it('is a 422 over HTTP, and --validate-only refuses it too', async () => {
    const up = await uploadCsv(t, payouts('total-http', OVER), 'type=payout&id=total-http');
    expect(up.status).toBe(422);
    const error = up.json.error as { code: string; details: unknown[] };
    expect(error.code).toBe('invalid_batch');
    expect(error.details).toEqual([
      {
        line: 92,
        column: 'amount',
        message: expect.stringContaining(`NGN amounts pass ${TOTAL_MAX}`),
      },
    ]);
    const dry = await submitBatch(t.app, {
      input: payouts('total-dry', OVER),
      type: 'payout',
      validateOnly: true,
    });
    expect(dry.status).toBe('invalid');
    expect(await batchKeysOf('total-http')).toEqual([]);
  });

  it('accepts a file at the maximum, whose status is exact to the minor unit', async () => {
    // 90 rows at the row maximum plus the rest up to 2^53 − 1 minor units, exactly.
    const rest = Number.MAX_SAFE_INTEGER - 90 * AMOUNT_MINOR_MAX;
    const amounts = [
      ...Array.from({ length: 90 }, () => ROW_MAX),
      `${Math.floor(rest / 100)}.${String(rest % 100).padStart(2, '0')}`,
    ];
    const r = await submitBatch(t.app, {
      input: payouts('total-at', amounts),
      type: 'payout',
      id: 'total-at',
    });
    expect(r.status).toBe('created');
    const s = await batchStatus(t.app, 'total-at');
    expect(s?.totals.NGN).toMatchObject({
      rows: 91,
      amount: TOTAL_MAX,
      amountMinor: Number.MAX_SAFE_INTEGER,
    });
  });
});
