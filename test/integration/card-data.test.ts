/**
 * Card data is refused at every input (issue "Survive the platform", item 4): a raw card number
 * sent as `card_token` — `POST /payments`, `POST /subscriptions`, a batch charge file, a
 * subscription import file — is refused naming the field (and, for CSV, the line and column),
 * and no digit group of it appears in the answer, the error details or the log lines.
 *
 * A card number typed into any other field (an amount, an email, a currency, a header) is refused
 * by that field's own rule, and every message that quotes the value shows `[card number removed]`
 * instead (kernel/card-number.ts): in the 422 body, a batch's stored errors, its results file and
 * the console page.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARD_NUMBER_REMOVED } from '../../src/kernel/card-number.ts';
import { CARD_NUMBER_REFUSED } from '../../src/input/fields.ts';
import { FAST_ENV, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { runBilling } from '../support/child.ts';
import { getRedisUrl } from '../support/redis.ts';

const PAN = '4111111111111111';
const WRITTEN = [PAN, '4111 1111 1111 1111', '4111-1111-1111-1111'];

/** Nothing here reaches the gateway (every request is refused first): no sandbox is needed. */
const GATEWAY_URL = 'http://127.0.0.1:9';

let t: TestApp;
let dir: string;
/** Every log line of the app under test, at debug level. */
const logLines: string[] = [];

beforeAll(async () => {
  t = await startTestApp({
    sandboxUrl: GATEWAY_URL,
    roles: ['api'],
    env: { LOG_LEVEL: 'debug' },
    logDestination: { write: (line) => void logLines.push(line) },
  });
  dir = await mkdtemp(join(tmpdir(), 'card-data-test-'));
});

afterAll(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * No digits of the card number: not as written, not two of its groups together, and not masked
 * down to its last four by the logger (which would mean the value reached a log line).
 */
function expectNoCardDigits(text: string) {
  for (const w of WRITTEN) expect(text).not.toContain(w);
  expect(text).not.toMatch(/4111[ -]*1111/);
  expect(text).not.toContain('[PAN');
}

async function post(path: string, body: string | object, contentType = 'application/json') {
  const res = await fetch(`${t.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType, authorization: `Bearer ${TEST_API_TOKEN}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as { error: Record<string, unknown> } };
}

describe('a card number as card_token is refused, never echoed', () => {
  it('POST /payments: 422 naming card_token, without the digits', async () => {
    for (const [i, card] of WRITTEN.entries()) {
      const key = `pan-payment-${'abc'[i]}`;
      const res = await post('/payments', {
        type: 'charge',
        key,
        email: 'ada@example.com',
        amount: '25.00',
        currency: 'NGN',
        card_token: card,
      });
      expect(res.status).toBe(422);
      expect(res.json).toEqual({
        error: {
          code: 'invalid_payment',
          message: 'the payment instruction is invalid',
          details: [{ field: 'card_token', message: CARD_NUMBER_REFUSED }],
        },
      });
      expectNoCardDigits(res.text);
      expect(await t.app.store.get(`api_${key}`)).toBeUndefined();
    }
  });

  it('POST /subscriptions: 422 naming card_token, without the digits', async () => {
    const res = await post('/subscriptions', {
      id: 'pan-sub',
      customer_email: 'ada@example.com',
      card_token: '4111 1111 1111 1111',
      amount: '1500',
      currency: 'NGN',
      interval: 'month',
      anchor: '2025-01-31T09:00:00+01:00',
      timezone: 'Africa/Lagos',
    });
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({
      code: 'invalid_subscription',
      details: [{ field: 'card_token', message: CARD_NUMBER_REFUSED }],
    });
    expectNoCardDigits(res.text);
    expect(await t.app.subscriptions.get('pan-sub')).toBeUndefined();
  });

  it('POST /batches (charge CSV): 422 naming the line and the column, without the digits', async () => {
    const csv = [
      'reference,email,amount,currency,card_token',
      'ok-1,ada@example.com,10,NGN,tok_fine_0123456789',
      `pan-1,ada@example.com,10,NGN,${PAN}`,
      'pan-2,ada@example.com,10,NGN,4111 1111 1111 1111',
      'pan-3,ada@example.com,10,NGN,"4111-1111-1111-1111"',
    ].join('\n');
    const res = await post('/batches?type=charge&id=panbatch', csv, 'text/csv');
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({
      code: 'invalid_batch',
      details: [2, 3, 4].map((i) => ({
        line: i + 1,
        column: 'card_token',
        message: CARD_NUMBER_REFUSED,
      })),
    });
    expectNoCardDigits(res.text);
    expect(await t.app.store.get('bat_panbatch_ok-1')).toBeUndefined();
  });

  it('subscription import (CSV): exit 2 naming the line and the column, without the digits', async () => {
    const file = join(dir, 'subs-with-pan.csv');
    await writeFile(
      file,
      [
        'id,customer_email,card_token,amount,currency,interval,interval_count,anchor,timezone',
        'fine-1,a@example.com,tok_fine_0123456789,10,NGN,month,1,2025-01-31T09:00:00Z,UTC',
        'pan-2,a@example.com,4111 1111 1111 1111,10,NGN,month,1,2025-01-31T09:00:00Z,UTC',
      ].join('\n'),
    );
    const run = await runBilling(['subs', 'import', file], {
      ...FAST_ENV,
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: t.prefix,
      SAYSWITCH_BASE_URL: GATEWAY_URL,
      LOG_LEVEL: 'debug',
    });
    expect(run.code, run.output).toBe(2);
    expect(run.output).toContain(`line 3, column card_token: ${CARD_NUMBER_REFUSED}`);
    expectNoCardDigits(run.output);
    expect(await t.app.subscriptions.get('fine-1')).toBeUndefined();
  });

  it('the log lines of all of the above hold no digit of the card number', () => {
    expect(logLines.length).toBeGreaterThan(0);
    expectNoCardDigits(logLines.join(''));
  });
});

/** Every value stored under the app's prefix, as text (strings, hashes, lists, sets, streams). */
async function storedText(): Promise<string> {
  const redis = t.app.redis;
  const match = `${t.prefix.replace(/[\\*?[\]^-]/g, '\\$&')}*`;
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      const value =
        type === 'string'
          ? await redis.get(key)
          : type === 'hash'
            ? await redis.hgetall(key)
            : type === 'list'
              ? await redis.lrange(key, 0, -1)
              : type === 'set'
                ? await redis.smembers(key)
                : type === 'zset'
                  ? await redis.zrange(key, '0', '-1')
                  : type === 'stream'
                    ? await redis.xrange(key, '-', '+')
                    : type;
      parts.push(key, JSON.stringify(value));
    }
  } while (cursor !== '0');
  return parts.join('\n');
}

describe('a card number in any other field is refused by its rule, never echoed', () => {
  const charge = {
    type: 'charge',
    email: 'ada@example.com',
    amount: '25.00',
    currency: 'NGN',
    card_token: 'tok_fine_0123456789',
  };
  const payout = {
    type: 'payout',
    account_number: '0123456789',
    bank_code: '058',
    bank_name: 'GTBank',
    account_name: 'Ada Obi',
    amount: '25.00',
    currency: 'GHS',
    narration: 'refund',
    payment_mode: 'momo',
  };

  it('POST /payments: 422 naming the field, the value shown as removed', async () => {
    let n = 0;
    for (const [body, field] of [
      [charge, 'amount'],
      [charge, 'email'],
      [charge, 'currency'],
      [payout, 'currency'],
      [payout, 'payment_mode'],
    ] as const) {
      for (const card of WRITTEN) {
        const res = await post('/payments', { ...body, key: `pan-field-${++n}`, [field]: card });
        expect(res.status, `${body.type} ${field} ${card}`).toBe(422);
        const details = res.json.error.details as { field: string; message: string }[];
        expect(details).toEqual([
          { field, message: expect.stringContaining(`"${CARD_NUMBER_REMOVED}"`) as string },
        ]);
        expectNoCardDigits(res.text);
      }
    }
    // An email with a card number in it is not an email, and is shown without the number.
    const res = await post('/payments', { ...charge, key: 'pan-in-email', email: `${PAN} ada` });
    expect(res.json.error.details).toEqual([
      { field: 'email', message: `email "${CARD_NUMBER_REMOVED} ada" is not valid` },
    ]);
    expectNoCardDigits(res.text);
    // A card number as a field's name.
    const named = await post('/payments', { ...charge, key: 'pan-as-name', [PAN]: 'x' });
    expect(named.status).toBe(422);
    expectNoCardDigits(named.text);
  });

  it('POST /subscriptions: interval, interval_count, anchor, timezone and email alike', async () => {
    const subscription = {
      id: 'pan-fields',
      customer_email: 'ada@example.com',
      card_token: 'tok_fine_0123456789',
      amount: '1500',
      currency: 'NGN',
      interval: 'month',
      anchor: '2025-01-31T09:00:00+01:00',
      timezone: 'Africa/Lagos',
    };
    for (const field of [
      'customer_email',
      'amount',
      'currency',
      'interval',
      'interval_count',
      'anchor',
      'timezone',
    ]) {
      const res = await post('/subscriptions', { ...subscription, [field]: PAN });
      expect(res.status, field).toBe(422);
      expect(res.json.error.details, field).toEqual([
        { field, message: expect.stringContaining(CARD_NUMBER_REMOVED) as string },
      ]);
      expectNoCardDigits(res.text);
    }
    expect(await t.app.subscriptions.get('pan-fields')).toBeUndefined();
  });

  it('POST /batches (charge CSV): each error names its line and column, without the digits', async () => {
    const csv = [
      'reference,email,amount,currency,card_token',
      `r1,ada@example.com,${PAN},NGN,tok_x`,
      `r2,${PAN},10,NGN,tok_x`,
      `r3,ada@example.com,10,"4111 1111 1111 1111",tok_x`,
      `r4,ada@example.com,4111-1111-1111-1111,NGN,tok_x`,
    ].join('\n');
    const res = await post('/batches?type=charge&id=panfields', csv, 'text/csv');
    expect(res.status).toBe(422);
    expect(res.json.error.details).toEqual(
      [
        [2, 'amount'],
        [3, 'email'],
        [4, 'currency'],
        [5, 'amount'],
      ].map(([line, column]) => ({
        line,
        column,
        message: expect.stringContaining(`"${CARD_NUMBER_REMOVED}"`) as string,
      })),
    );
    expectNoCardDigits(res.text);
  });

  it('POST /batches: a file without a header whose first row holds a card number', async () => {
    const csv = [`r1,ada@example.com,10,NGN,${PAN}`, 'r2,ada@example.com,10,NGN,tok_x'].join('\n');
    const res = await post('/batches?type=charge&id=panheader', csv, 'text/csv');
    expect(res.status).toBe(422);
    expect(res.json.error.details).toEqual([
      {
        line: 1,
        message: expect.stringMatching(
          /^the first line is not a charge header: .* found 5 columns with no known name \(is the header line missing\?\)$/,
        ) as string,
      },
    ]);
    expectNoCardDigits(res.text);
  });

  it('--skip-invalid: the stored error, the results file and the console page hold no digits', async () => {
    const csv = [
      'reference,email,amount,currency,card_token',
      `r1,ada@example.com,${PAN},NGN,tok_x`,
      'r2,ada@example.com,10,NGN,tok_y',
    ].join('\n');
    const res = await post('/batches?type=charge&id=panskip&skipInvalid=true', csv, 'text/csv');
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ batchId: 'panskip', valid: 1, invalid: 1 });
    expectNoCardDigits(res.text);

    const auth = { authorization: `Bearer ${TEST_API_TOKEN}` };
    const results = await fetch(`${t.url}/batches/panskip/results`, { headers: auth });
    expect(results.status).toBe(200);
    const resultsCsv = await results.text();
    expect(resultsCsv).toContain(`amount: amount ""${CARD_NUMBER_REMOVED}"" is more than`);
    expectNoCardDigits(resultsCsv);

    const page = await fetch(`${t.url}/console/batches/panskip`, { headers: auth });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(CARD_NUMBER_REMOVED);
    expectNoCardDigits(html);

    const stored = await storedText();
    expect(stored).toContain(CARD_NUMBER_REMOVED);
    expectNoCardDigits(stored);
  });

  it('the log lines of all of the above hold no digit of the card number', () => {
    expectNoCardDigits(logLines.join(''));
  });
});

describe('a card number in a path or a query is never echoed back', () => {
  const auth = { authorization: `Bearer ${TEST_API_TOKEN}` };
  const get = async (path: string) => {
    const res = await fetch(`${t.url}${path}`, { headers: auth });
    return { status: res.status, text: await res.text() };
  };

  it('API answers: not found, an unknown query name, an unknown route', async () => {
    for (const path of [
      `/payments/${PAN}`,
      `/payments/api_${PAN}_1`,
      `/payments/${PAN}/refunds`,
      `/payments?${PAN}=1`,
      `/subscriptions/${PAN}`,
      `/batches/${PAN}`,
      `/batches/${PAN}/results`,
      `/nothing/${PAN}`,
      `/payments/${encodeURIComponent('4111 1111 1111 1111')}`,
    ]) {
      const res = await get(path);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.text, path).toContain(CARD_NUMBER_REMOVED);
      expectNoCardDigits(res.text);
    }
  });

  it('console pages: a payment, batch, subscription or inbox item not found, and the search', async () => {
    for (const path of [
      `/console/payments/${PAN}`,
      `/console/payments?q=${PAN}`,
      `/console/batches/${PAN}`,
      `/console/batches?id=${PAN}`,
      `/console/batches/${PAN}/results.csv`,
      `/console/subscriptions/${PAN}`,
      `/console/inbox/${PAN}`,
    ]) {
      const res = await get(path);
      expect(res.text, path).toContain(CARD_NUMBER_REMOVED);
      // The search box keeps what was typed in it (the operator's own input, on their own page).
      expectNoCardDigits(res.text.replace(/<input[^>]*>/g, ''));
    }
  });
});
