import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import { callSandbox, chargeBody, payoutBody, startTestSandbox } from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const PAYOUT = '/api/v1/bank_transfer';

let sb: Sandbox;
let seq = 0;
/** A fresh reference per call: the sandbox refuses a reused one with 409. */
const ref = (label: string) => `${label}_${++seq}`;

beforeAll(async () => {
  // settleMs long enough that a loaded machine does not settle a pending submission between its
  // answer and the test's look at the ledger ("ledgerNow" below): under load 50 ms did.
  sb = await startTestSandbox({ settleMs: 1_000, hangMs: 150 });
});
afterAll(async () => {
  await sb.close();
});

describe('auth', () => {
  it.each([
    ['no header', null],
    ['a wrong key', 'sk_test_wrong'],
  ])('refuses %s with 401', async (_label, secretKey) => {
    const res = await callSandbox(sb, CHARGE, {
      body: chargeBody(ref('auth'), '15'),
      secretKey,
    });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ success: false, message: 'Unauthorized' });
    const lookup = await callSandbox(sb, '/api/v1/wallet_balance/NGN', { secretKey });
    expect(lookup.status).toBe(401);
  });

  it('records nothing for an unauthorized submission', async () => {
    const r = ref('auth');
    await callSandbox(sb, CHARGE, { body: chargeBody(r, '15'), secretKey: 'nope' });
    expect(sb.ledger().references[r]).toBeUndefined();
  });
});

type Expected = {
  http: number;
  /** data.status in the 200 response. */
  status?: 'success' | 'pending' | 'failed';
  /** The ledger right after the response. */
  ledgerNow: { status: string; moneyMoved: boolean } | undefined;
  /** The ledger once settled (52, 53, 58). */
  ledgerLater?: { status: string; moneyMoved: boolean };
};

const COMMON: Record<string, Expected> = {
  '51': {
    http: 200,
    status: 'failed',
    ledgerNow: { status: 'failed', moneyMoved: false },
  },
  '52': {
    http: 200,
    status: 'pending',
    ledgerNow: { status: 'pending', moneyMoved: false },
    ledgerLater: { status: 'success', moneyMoved: true },
  },
  '53': {
    http: 200,
    status: 'pending',
    ledgerNow: { status: 'pending', moneyMoved: false },
    ledgerLater: { status: 'failed', moneyMoved: false },
  },
  '54': { http: 500, ledgerNow: { status: 'success', moneyMoved: true } },
  '56': { http: 500, ledgerNow: undefined },
  '00': { http: 200, status: 'success', ledgerNow: { status: 'success', moneyMoved: true } },
};

const CHARGE_TABLE: Record<string, Expected> = {
  ...COMMON,
  '58': { http: 200, status: 'success', ledgerNow: { status: 'success', moneyMoved: true } },
};
const PAYOUT_TABLE: Record<string, Expected> = {
  ...COMMON,
  '58': {
    http: 200,
    status: 'success',
    ledgerNow: { status: 'success', moneyMoved: true },
    ledgerLater: { status: 'reversed', moneyMoved: false },
  },
};

describe.each([
  { kind: 'charge' as const, path: CHARGE, table: CHARGE_TABLE, body: chargeBody },
  { kind: 'payout' as const, path: PAYOUT, table: PAYOUT_TABLE, body: payoutBody },
])('$kind outcomes by amount % 100', ({ kind, path, table, body }) => {
  it.each(Object.entries(table))('remainder %s', async (rem, expected) => {
    const r = ref(`${kind}${rem}`);
    const res = await callSandbox(sb, path, { body: body(r, `1500.${rem}`) });
    expect(res.status).toBe(expected.http);
    if (expected.http === 200) {
      expect(res.body.data.reference).toBe(r);
      expect(res.body.data.status).toBe(expected.status);
      expect(res.body[kind === 'charge' ? 'status' : 'success']).toBe(true);
      if (rem === '51') expect(res.body.data.gateway_response).toBe('Declined');
    } else {
      expect(res.body.success).toBe(false);
    }
    const entry = sb.ledger().references[r];
    if (expected.ledgerNow === undefined) {
      expect(entry).toBeUndefined();
    } else {
      expect(entry).toEqual({
        kind,
        amount: 150_000 + Number(rem),
        currency: 'NGN',
        ...expected.ledgerNow,
      });
    }
    if (expected.ledgerLater) {
      const later = expected.ledgerLater;
      const settled = await until(
        () => {
          const e = sb.ledger().references[r];
          return e?.status === later.status ? e : undefined;
        },
        { what: `${r} ${later.status} in the ledger` },
      );
      expect(settled.moneyMoved).toBe(later.moneyMoved);
    }
  });

  it('57: 429 with Retry-After 1 and nothing recorded, then success on the retry', async () => {
    const r = ref(`${kind}57`);
    const first = await callSandbox(sb, path, { body: body(r, '1500.57') });
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('1');
    expect(sb.ledger().references[r]).toBeUndefined();
    const second = await callSandbox(sb, path, { body: body(r, '1500.57') });
    expect(second.status).toBe(200);
    expect(second.body.data.status).toBe('success');
    expect(sb.ledger().references[r]).toMatchObject({ status: 'success', moneyMoved: true });
  });

  it('55: money moves at once, the response is held for hangMs', async () => {
    const r = ref(`${kind}55`);
    const started = Date.now();
    const pending = callSandbox(sb, path, { body: body(r, '1500.55') });
    const entry = await until(() => sb.ledger().references[r], { what: `${r} in the ledger` });
    expect(entry).toMatchObject({ status: 'success', moneyMoved: true });
    const res = await pending;
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(res.status).toBe(200);
    expect(res.body.data.status).toBe('success');
  });

  it('55: a client that times out sees no answer while the ledger says the money moved', async () => {
    // The client gives up once the sandbox has the submission, not after a fixed 30 ms: on a
    // loaded machine the request had not even been sent by then, and nothing was recorded. Its
    // own sandbox holds the answer for a minute, so no answer can come before the client leaves.
    const own = await startTestSandbox({ hangMs: 60_000 });
    try {
      const r = ref(`${kind}55t`);
      const client = new AbortController();
      const answer = callSandbox(own, path, { body: body(r, '1500.55'), signal: client.signal });
      const outcome = answer.then(
        () => 'answered',
        () => 'no answer',
      );
      await until(() => own.ledger().references[r], { what: `${r} in the ledger` });
      client.abort();
      expect(await outcome).toBe('no answer');
      expect(own.ledger().references[r]).toMatchObject({ moneyMoved: true });
    } finally {
      await own.close();
    }
  });

  it('56: the same reference may be submitted again (no 409)', async () => {
    const r = ref(`${kind}56`);
    expect((await callSandbox(sb, path, { body: body(r, '1500.56') })).status).toBe(500);
    expect((await callSandbox(sb, path, { body: body(r, '1500.56') })).status).toBe(500);
    // A different amount under the same reference goes through: nothing was recorded.
    expect((await callSandbox(sb, path, { body: body(r, '1500') })).status).toBe(200);
  });

  it('409 on a reused reference, whatever the first outcome', async () => {
    for (const rem of ['00', '51', '52', '54']) {
      const r = ref(`${kind}dup${rem}`);
      await callSandbox(sb, path, { body: body(r, `1500.${rem}`) });
      const again = await callSandbox(sb, path, { body: body(r, '99') });
      expect(again.status).toBe(409);
      expect(again.body).toEqual({ success: false, message: 'Duplicate reference' });
    }
  });
});

describe('references are one namespace', () => {
  it('refuses a payout reusing a charge reference', async () => {
    const r = ref('shared');
    expect((await callSandbox(sb, CHARGE, { body: chargeBody(r, '10') })).status).toBe(200);
    expect((await callSandbox(sb, PAYOUT, { body: payoutBody(r, '10') })).status).toBe(409);
  });
});

describe('amounts and fees', () => {
  it('charges 1.2 % rounded half up, amount = requested + fees', async () => {
    const r = ref('fee');
    const res = await callSandbox(sb, CHARGE, { body: chargeBody(r, '10') });
    expect(res.body.data).toMatchObject({
      amount: '10.12',
      requested_amount: '10',
      fees: '0.12',
      currency: 'NGN',
    });
    // 1.25 → 1.5 kobo → rounds half up to 2 kobo.
    const half = await callSandbox(sb, CHARGE, { body: chargeBody(ref('fee'), '1.25', 'USD') });
    expect(half.body.data).toMatchObject({ fees: '0.02', requested_amount: '1.25' });
  });

  it('payouts carry a flat 10.00 fee and echo the transfer', async () => {
    const res = await callSandbox(sb, PAYOUT, { body: payoutBody(ref('pfee'), '100', 'GHS') });
    expect(res.body.data).toMatchObject({
      amount: '100',
      fee: '10',
      currency: 'GHS',
      paymentMode: 'momo',
    });
  });
});

describe('lookups', () => {
  it('verify returns a charge on both paths, 404 for unknown or payout references', async () => {
    const r = ref('verify');
    // A charge that is final at once: a pending one (52) settles after settleMs, which a loaded
    // machine can pass between the two lookups ("verify follows settlement" covers that).
    await callSandbox(sb, CHARGE, { body: chargeBody(r, '20.50') });
    for (const p of ['/api/v1/transaction/verify/', '/api/s2s/v1/transaction/verify/']) {
      const res = await callSandbox(sb, `${p}${r}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        success: true,
        message: 'Verification successful',
        data: { reference: r, requested_amount: '20.50', status: 'success' },
      });
    }
    const missing = await callSandbox(sb, '/api/v1/transaction/verify/nope_1');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({
      success: false,
      message: 'Transaction not found',
      error: 'No transaction found with reference: nope_1',
    });
    const p = ref('payoutref');
    await callSandbox(sb, PAYOUT, { body: payoutBody(p, '5') });
    expect((await callSandbox(sb, `/api/v1/transaction/verify/${p}`)).status).toBe(404);
  });

  it('verify follows settlement', async () => {
    const r = ref('verify53');
    await callSandbox(sb, CHARGE, { body: chargeBody(r, '20.53') });
    await until(() => sb.ledger().references[r]?.status === 'failed', { what: `${r} failed` });
    const res = await callSandbox(sb, `/api/v1/transaction/verify/${r}`);
    expect(res.body.data.status).toBe('failed');
  });

  it('payout lookup shows reversal, 404 when unknown', async () => {
    const r = ref('lookup58');
    await callSandbox(sb, PAYOUT, { body: payoutBody(r, '20.58') });
    expect((await callSandbox(sb, `/api/v1/payout/${r}`)).body).toMatchObject({
      success: true,
      message: 'Payout retrieved',
      data: { reference: r, amount: '20.58', fee: '10', status: 'success' },
    });
    await until(() => sb.ledger().references[r]?.status === 'reversed', { what: `${r} reversed` });
    expect((await callSandbox(sb, `/api/v1/payout/${r}`)).body.data.status).toBe('reversed');
    const missing = await callSandbox(sb, '/api/v1/payout/nope_2');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ success: false, message: 'Payout not found' });
  });
});

describe('validation', () => {
  it.each([
    ['a missing card', { ...chargeBody('v_1', '10'), card: undefined }],
    ['a zero amount', chargeBody('v_2', '0')],
    ['a negative amount', chargeBody('v_3', '-5')],
    ['an unsupported currency', chargeBody('v_4', '10', 'KES')],
    ['a bad reference', chargeBody('bad ref!', '10')],
  ])('refuses a charge with %s (400, nothing recorded)', async (_label, body) => {
    const res = await callSandbox(sb, CHARGE, { body });
    expect(res.status).toBe(400);
    expect(res.body.success).toBe(false);
    expect(res.raw).not.toContain('tok_opaque_card');
    expect(Object.keys(sb.ledger().references).some((k) => k.startsWith('v_'))).toBe(false);
  });

  it('requires paymentMode for KES and GHS payouts', async () => {
    const body = { ...payoutBody('v_5', '10', 'KES'), paymentMode: undefined };
    const res = await callSandbox(sb, PAYOUT, { body });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('paymentMode');
  });

  it('answers malformed JSON with an envelope, without echoing the body', async () => {
    const res = await fetch(`${sb.url}${CHARGE}`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk_test_sandbox', 'content-type': 'application/json' },
      body: '{"card":"4111111111111111",',
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ success: false, message: 'Bad request' });
    expect(text).not.toContain('4111');
  });
});

describe('banks, account names, wallet', () => {
  it('lists banks for NGN by default and per currency', async () => {
    const ngn = await callSandbox(sb, '/api/v1/bank_list');
    expect(ngn.body).toMatchObject({ success: true, currency: 'NGN' });
    expect(ngn.body.data).toContainEqual({ bankName: 'Guaranty Trust Bank', bankCode: '000013' });
    const ghs = await callSandbox(sb, '/api/v1/bank_list/GHS');
    expect(ghs.body.data).toContainEqual({ bankName: 'MTN Mobile Money', bankCode: 'MTNGH' });
    expect((await callSandbox(sb, '/api/v1/bank_list/XYZ')).status).toBe(400);
  });

  it('resolves account names, and fails the documented way', async () => {
    const ok = await callSandbox(sb, '/api/v1/account_name_verify', {
      body: { bank_code: '000013', account_number: '0123456789', currency: 'NGN' },
    });
    expect(ok.body).toEqual({
      success: true,
      message: 'Account name retrieved.',
      data: 'Sandbox Account 6789',
    });
    const bad = await callSandbox(sb, '/api/v1/account_name_verify', {
      body: { bank_code: '000013', account_number: '0123450000', currency: 'NGN' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ success: false, message: 'Name query failed' });
  });

  it('reports a wallet balance that follows moved money', async () => {
    const own = await startTestSandbox();
    try {
      const before = await callSandbox(own, '/api/v1/wallet_balance/NGN');
      expect(before.body).toEqual({
        success: true,
        message: 'Wallet Balance Fetched Successfully',
        data: { currency: 'NGN', balance: '10000000', pending: '0' },
      });
      await callSandbox(own, CHARGE, { body: chargeBody('w_1', '100') });
      await callSandbox(own, PAYOUT, { body: payoutBody('w_2', '30') });
      const after = await callSandbox(own, '/api/v1/wallet_balance/NGN');
      // +100 charged, -30 paid out, -10 payout fee.
      expect(after.body.data.balance).toBe('10000060');
    } finally {
      await own.close();
    }
  });
});

describe('ledger', () => {
  it('serves GET /__sandbox/ledger without auth, equal to ledger(), totals maintained', async () => {
    const own = await startTestSandbox({ settleMs: 20 });
    try {
      await callSandbox(own, CHARGE, { body: chargeBody('l_1', '10') });
      await callSandbox(own, CHARGE, { body: chargeBody('l_2', '10.51') });
      await callSandbox(own, PAYOUT, { body: payoutBody('l_3', '5.58') });
      await callSandbox(own, CHARGE, { body: chargeBody('l_4', '1', 'USD') });
      await until(() => own.ledger().references.l_3?.status === 'reversed', {
        what: 'l_3 reversed',
      });
      const served = await callSandbox(own, '/__sandbox/ledger', { secretKey: null });
      expect(served.status).toBe(200);
      expect(served.body).toEqual(own.ledger());
      expect(served.body.totals).toEqual({
        NGN: { movedMinor: 1000, count: 1 },
        USD: { movedMinor: 100, count: 1 },
      });
      expect(served.raw).not.toContain('tok_opaque_card');
      expect(served.raw).not.toContain('0123456789');
    } finally {
      await own.close();
    }
  });

  it('ledger() returns a copy', () => {
    const copy = sb.ledger();
    copy.references.injected = {
      kind: 'charge',
      amount: 1,
      currency: 'NGN',
      status: 'success',
      moneyMoved: true,
    };
    expect(sb.ledger().references.injected).toBeUndefined();
  });
});
