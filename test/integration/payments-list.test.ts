/**
 * GET /payments: filters and cursor pagination over the store's indexes (payments/list.ts,
 * payments/store/intent-list.ts), on real Redis through the HTTP API. Batch rows share one
 * createdAt (ties), states move while a list is paged, new payments arrive between pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayment } from '../../src/payments/create.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { PaymentList } from '../../src/payments/list.ts';
import { createDeps, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';

/** A JSON answer of the API: a view, a list or an error. */
interface ApiBody {
  error?: { code: string; message: string; details?: unknown };
  [field: string]: unknown;
}

let sandbox: Sandbox;
let t: TestApp;
const AUTH = { headers: { authorization: `Bearer ${TEST_API_TOKEN}` } };

async function get(path: string): Promise<{ status: number; body: ApiBody }> {
  const res = await fetch(`${t.url}${path}`, AUTH);
  return { status: res.status, body: (await res.json()) as ApiBody };
}

/** Every page of a list, following next_cursor. */
async function all(query: string, limit: number): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1_000; pages++) {
    const sep = query ? '&' : '';
    const r = await get(
      `/payments?${query}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const page = r.body as unknown as PaymentList;
    expect(page.data.length).toBeLessThanOrEqual(limit);
    keys.push(...page.data.map((p) => p.key));
    cursor = page.next_cursor;
    if (cursor === null) return keys;
  }
  throw new Error('too many pages');
}

const deps = () => createDeps(t.app);

const charge = (key: string) => ({
  type: 'charge',
  key,
  email: 'list@example.com',
  amount: '10.00',
  currency: 'NGN',
  card_token: 'tok_list_0123456789',
});
const payout = (key: string) => ({
  type: 'payout',
  key,
  account_number: '0123456789',
  bank_code: '000013',
  bank_name: 'GTBank',
  account_name: 'List Test',
  amount: '20.00',
  currency: 'NGN',
  narration: 'list',
});

let charges: string[];
let payouts: string[];
let batchKeys: string[];

beforeAll(async () => {
  sandbox = await startTestSandbox();
  // The api role alone: nothing moves the payments but the test.
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['api'] });
  charges = [];
  payouts = [];
  for (let i = 0; i < 9; i++) {
    const c = await createPayment(deps(), charge(`c${i}`));
    charges.push(c.status === 'created' ? c.intent.key : '');
    const p = await createPayment(deps(), payout(`p${i}`));
    payouts.push(p.status === 'created' ? p.intent.key : '');
  }
  // 25 batch rows created in one call: one createdAt for all of them.
  const rows = Array.from({ length: 25 }, (_, i) => ({
    key: `bat_listb_r${String(i).padStart(2, '0')}` as IntentKey,
    type: 'charge' as const,
    origin: 'batch' as const,
    amount: 500 as AmountMinor,
    currency: 'NGN' as const,
    payee: {
      kind: 'charge' as const,
      email: 'b@example.com',
      cardTokenSealed: t.app.sealer.seal('tok_list_batch_0123'),
    },
    batchId: 'listb',
    line: i + 2,
  }));
  await t.app.store.createBatchDrafts(rows, Date.now());
  batchKeys = rows.map((r) => r.key);
  // A few move on: failed payouts.
  for (const k of payouts.slice(0, 3)) {
    await t.app.store.transition(k, 'submitting', Date.now());
    await t.app.store.transition(k, 'failed', Date.now(), { patch: { reason: 'declined' } });
  }
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

describe('GET /payments', () => {
  it('pages through everything exactly once, newest first, ties included', async () => {
    const everything = await all('', 4);
    expect(new Set(everything).size).toBe(everything.length);
    expect(everything.sort()).toEqual([...charges, ...payouts, ...batchKeys].sort());
    const first = (await get('/payments?limit=3')).body as unknown as PaymentList;
    const created = first.data.map((p) => Date.parse(p.createdAt));
    expect(created).toEqual([...created].sort((a, b) => b - a));
  });

  it('filters by type, state, batch and dates', async () => {
    expect((await all('type=payout', 2)).sort()).toEqual([...payouts].sort());
    expect((await all('type=charge', 7)).sort()).toEqual([...charges, ...batchKeys].sort());
    expect((await all('state=failed', 2)).sort()).toEqual(payouts.slice(0, 3).sort());
    expect((await all('state=queued&type=payout', 2)).sort()).toEqual(payouts.slice(3).sort());
    const batch = await all('batch=listb', 10);
    expect(batch).toEqual(batchKeys); // by line
    expect(await all('batch=listb&state=failed', 10)).toEqual([]);
    expect(await all('created_after=2999-01-01', 5)).toEqual([]);
    expect((await all('created_before=2999-01-01T00:00:00Z&type=payout', 50)).length).toBe(9);
  });

  it("filters by currency and by a charge's customer email, ignoring case", async () => {
    expect((await all('email=LIST@Example.com', 3)).sort()).toEqual([...charges].sort());
    expect(await all('email=b@example.com&batch=listb', 10)).toEqual(batchKeys);
    expect(await all('email=nobody@example.com', 50)).toEqual([]);
    expect((await all('currency=NGN&type=payout', 4)).sort()).toEqual([...payouts].sort());
    expect(await all('currency=USD', 50)).toEqual([]);
    const bad = await get('/payments?currency=XYZ&email=nope');
    expect(bad.status).toBe(422);
    expect((bad.body.error?.details as { field: string }[]).map((d) => d.field).sort()).toEqual([
      'currency',
      'email',
    ]);
  });

  it('a page does not repeat or skip when new payments arrive and states change between pages', async () => {
    const r1 = (await get('/payments?type=charge&limit=5')).body as unknown as PaymentList;
    await createPayment(deps(), charge('late1'));
    await t.app.store.transition(r1.data[4]!.key, 'submitting', Date.now());
    const rest = await (async () => {
      const keys: string[] = [];
      let cursor = r1.next_cursor;
      while (cursor) {
        const p = (await get(`/payments?type=charge&limit=5&cursor=${encodeURIComponent(cursor)}`))
          .body as unknown as PaymentList;
        keys.push(...p.data.map((d) => d.key));
        cursor = p.next_cursor;
      }
      return keys;
    })();
    const seen = [...r1.data.map((d) => d.key), ...rest];
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.sort()).toEqual([...charges, ...batchKeys].sort()); // late1 is newer than page 1
  });

  it('refuses unknown parameters, bad values and foreign cursors, naming them', async () => {
    const unknown = await get('/payments?skip_invalid=true');
    expect(unknown.status).toBe(422);
    expect(JSON.stringify(unknown.body.error?.details)).toContain('skip_invalid');
    const bad = await get('/payments?state=paid&created_after=yesterday&limit=0');
    expect(bad.status).toBe(422);
    expect((bad.body.error?.details as { field: string }[]).map((d) => d.field).sort()).toEqual([
      'created_after',
      'limit',
      'state',
    ]);
    const page = (await get('/payments?type=payout&limit=2')).body as unknown as PaymentList;
    const foreign = await get(`/payments?type=charge&cursor=${page.next_cursor}`);
    expect(foreign.status).toBe(422);
    expect((foreign.body.error?.details as { field: string }[])[0]?.field).toBe('cursor');
    expect((await get('/payments?cursor=garbage')).status).toBe(422);
  });

  it("GET /payments/:ref also takes the caller's own key", async () => {
    const own = await get('/payments/c3');
    expect(own.status).toBe(200);
    expect(own.body.key).toBe('api_c3');
  });
});
