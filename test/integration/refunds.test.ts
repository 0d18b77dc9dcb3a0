/**
 * Refunds (docs/refunds.md) through the real pipeline: HTTP → Redis reservation → BullMQ →
 * worker → the sandbox's refund endpoints → reconciler, with the sandbox ledger as the truth of
 * what money went back. Never more than the charge, even under concurrent requests; a refund
 * whose answer was lost is found by lookup and never sent twice; refused requests write nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox, SandboxOptionsInput } from '../../src/sandbox/index.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import { apiCall } from '../support/api-call.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox, startWebhookReceiver, type LooseJson } from '../support/sandbox.ts';

const SETTLED = new Set(['succeeded', 'failed', 'reversed', 'needs_review']);

const call = (t: TestApp, method: 'GET' | 'POST', path: string, body?: unknown) =>
  apiCall<LooseJson>(t, method, path, body);

async function settled(t: TestApp, key: string, timeoutMs = 20_000): Promise<Intent> {
  const intent = await until(() => t.app.store.get(key), {
    done: (i) => i !== undefined && SETTLED.has(i.state),
    what: `${key} settled`,
    timeoutMs,
  });
  return intent!;
}

/** A charge through POST /payments, waited for until settled. */
async function charge(t: TestApp, key: string, amount: string): Promise<Intent> {
  const res = await call(t, 'POST', '/payments', {
    type: 'charge',
    key,
    email: 'refund@example.com',
    amount,
    currency: 'NGN',
    card_token: 'tok_refund_0123456789',
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return settled(t, `api_${key}`);
}

async function refundEvents(t: TestApp, chargeKey: string) {
  const events = await t.app.events.read('-', 10_000);
  return events.filter(
    (e) => e.type.startsWith('refund.') && String(e.data.key).endsWith(`_${chargeKey}`),
  );
}

/** What the sandbox gave back on the charge's transaction, and how many refunds it recorded. */
function givenBack(sandbox: Sandbox, charge: Intent) {
  const ledger = sandbox.ledger();
  const activity = ledger.activity[charge.reference];
  const refunds = Object.values(ledger.refunds).filter(
    (r) => r.transactionReference === charge.reference,
  );
  return {
    refundedMinor: activity?.refundedMinor ?? 0,
    refunds: refunds.length,
    reservedAtGateway: refunds
      .filter((r) => r.status !== 'failed')
      .reduce((sum, r) => sum + r.amount, 0),
  };
}

async function open(sandboxOpts: SandboxOptionsInput, env: Record<string, string> = {}) {
  const sandbox = await startTestSandbox({ settleMs: 200, hangMs: 2_000, ...sandboxOpts });
  const t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api', 'worker', 'reconciler'],
    env: { SAYSWITCH_PARTIAL_REFUNDS: 'true', ...env },
  });
  return {
    sandbox,
    t,
    close: async () => {
      await t.close();
      await sandbox.close();
    },
  };
}

describe('refunds: default sandbox, partial refunds on', () => {
  let sandbox: Sandbox;
  let t: TestApp;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ sandbox, t, close } = await open({ refundSettleMs: 50 }));
  });
  afterAll(() => close());

  it('a charge named by its intent key is that charge, not an attempt of a key it extends', async () => {
    // `api_inv_2` reads as attempt 2 of `api_inv` too; the intent key is the charge meant.
    const big = await charge(t, 'inv', '50.00');
    const small = await charge(t, 'inv_2', '10.00');
    expect([big.state, small.state]).toEqual(['succeeded', 'succeeded']);
    const view = await call(t, 'GET', '/payments/api_inv_2');
    expect(view.body).toMatchObject({ key: 'api_inv_2' });
    const res = await call(t, 'POST', '/payments/api_inv_2/refunds', {});
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ chargeKey: 'api_inv_2', amountMinor: 1000 });
    expect((await settled(t, 'rf1_api_inv_2')).state).toBe('succeeded');
    expect(givenBack(sandbox, big).refundedMinor).toBe(0);
    // An attempt reference still finds its charge when no intent has that key.
    expect((await call(t, 'GET', `/payments/${big.reference}`)).body).toMatchObject({
      key: 'api_inv',
    });
  });

  it('a full refund: succeeded, refund.succeeded published, the ledger gave it all back, nothing left', async () => {
    const c = await charge(t, 'rf-full', '25.00');
    expect(c.state).toBe('succeeded');
    const res = await call(t, 'POST', '/payments/rf-full/refunds', { reason: 'customer asked' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({
      key: 'rf1_api_rf-full',
      type: 'refund',
      amountMinor: 2500,
      chargeKey: 'api_rf-full',
      reason: 'customer asked',
    });
    const refund = await settled(t, 'rf1_api_rf-full');
    expect(refund.state).toBe('succeeded');
    expect(refund.gatewayReference).toMatch(/^RF_/);
    expect(givenBack(sandbox, c)).toEqual({
      refundedMinor: 2500,
      refunds: 1,
      reservedAtGateway: 2500,
    });

    const summary = await call(t, 'GET', '/payments/api_rf-full/refunds');
    expect(summary.body).toMatchObject({
      chargedMinor: 2500,
      refundedMinor: 2500,
      inFlightMinor: 0,
      refundableMinor: 0,
      status: 'refunded',
    });
    const events = await until(() => refundEvents(t, 'api_rf-full'), {
      done: (e) => e.length > 0,
      what: 'refund.succeeded',
    });
    expect(events.map((e) => [e.type, e.data.key])).toEqual([
      ['refund.succeeded', 'rf1_api_rf-full'],
    ]);
    // No payment.* event for the refund: a consumer of charges never mistakes it for one.
    const all = await t.app.events.read('-', 10_000);
    expect(all.filter((e) => e.data.key === 'rf1_api_rf-full').map((e) => e.type)).toEqual([
      'refund.succeeded',
    ]);

    // Nothing is left: refused, nothing written.
    const again = await call(t, 'POST', '/payments/rf-full/refunds', {});
    expect(again.status).toBe(422);
    expect(again.body.error.code).toBe('refund_exceeds_charge');
    expect(await t.app.refunds.refundsOf('api_rf-full')).toHaveLength(1);
  });

  it('partial refunds up to the charged amount, then refusal; the charge shows partially_refunded on the way', async () => {
    const c = await charge(t, 'rf-part', '100.00');
    for (const [n, amount] of [
      [1, 3000],
      [2, 3000],
    ] as const) {
      const res = await call(t, 'POST', '/payments/api_rf-part/refunds', { amount });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.key).toBe(`rf${n}_api_rf-part`);
      expect((await settled(t, `rf${n}_api_rf-part`)).state).toBe('succeeded');
    }
    const mid = await call(t, 'GET', '/payments/rf-part/refunds');
    expect(mid.body).toMatchObject({
      refundedMinor: 6000,
      refundableMinor: 4000,
      status: 'partially_refunded',
    });
    const over = await call(t, 'POST', '/payments/rf-part/refunds', { amount: 4001 });
    expect(over.status).toBe(422);
    expect(over.body.error).toMatchObject({
      code: 'refund_exceeds_charge',
      details: { chargedMinor: 10000, reservedMinor: 6000, requestedMinor: 4001 },
    });
    // The rest, by leaving the amount out.
    const rest = await call(t, 'POST', '/payments/rf-part/refunds', {});
    expect(rest.status).toBe(201);
    expect(rest.body.amountMinor).toBe(4000);
    expect((await settled(t, 'rf3_api_rf-part')).state).toBe('succeeded');
    expect((await call(t, 'POST', '/payments/rf-part/refunds', { amount: 1 })).status).toBe(422);
    expect(givenBack(sandbox, c)).toEqual({
      refundedMinor: 10000,
      refunds: 3,
      reservedAtGateway: 10000,
    });
    expect(await t.app.refunds.refundsOf('api_rf-part')).toHaveLength(3);
  });

  it('concurrent partial refunds whose sum exceeds the charge: the store and the ledger never exceed it', async () => {
    const c = await charge(t, 'rf-race', '100.00');
    const replies = await Promise.all(
      Array.from({ length: 12 }, () =>
        call(t, 'POST', '/payments/api_rf-race/refunds', { amount: 2500 }),
      ),
    );
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(4);
    expect(statuses.filter((s) => s === 422)).toHaveLength(8);
    const stored = await t.app.refunds.refundsOf('api_rf-race');
    expect(stored.map((r) => r.amount).reduce((a, b) => a + b, 0)).toBe(10000);
    for (const r of stored) expect((await settled(t, r.key)).state).toBe('succeeded');
    expect(givenBack(sandbox, c)).toEqual({
      refundedMinor: 10000,
      refunds: 4,
      reservedAtGateway: 10000,
    });
    const events = await until(() => refundEvents(t, 'api_rf-race'), {
      done: (e) => e.length === 4,
      what: 'four refund.succeeded',
    });
    expect(new Set(events.map((e) => e.data.key)).size).toBe(4);
  });

  it('the same caller key returns the same refund; another body under it is refused', async () => {
    await charge(t, 'rf-idem', '40.00');
    const first = await call(t, 'POST', '/payments/rf-idem/refunds', { amount: 1000, key: 'r-1' });
    const second = await call(t, 'POST', '/payments/rf-idem/refunds', { amount: 1000, key: 'r-1' });
    expect([first.status, second.status]).toEqual([201, 200]);
    expect(second.body.key).toBe(first.body.key);
    const other = await call(t, 'POST', '/payments/rf-idem/refunds', { amount: 999, key: 'r-1' });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('key_reused');
    // The reason is part of the body: kept with the refund and sent to Sayswitch.
    const reworded = await call(t, 'POST', '/payments/rf-idem/refunds', {
      amount: 1000,
      key: 'r-1',
      reason: 'damaged',
    });
    expect(reworded.status).toBe(409);
    expect(await t.app.refunds.refundsOf('api_rf-idem')).toHaveLength(1);
  });

  it('a charge that did not succeed, a payout and an unknown key are refused with nothing written', async () => {
    const declined = await charge(t, 'rf-declined', '25.51');
    expect(declined.state).toBe('failed');
    const res = await call(t, 'POST', '/payments/rf-declined/refunds', {});
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({
      code: 'not_refundable',
      details: { type: 'charge', state: 'failed' },
    });
    expect(await t.app.refunds.refundsOf('api_rf-declined')).toEqual([]);
    expect(await t.app.store.get('rf1_api_rf-declined')).toBeUndefined();

    const payout = await call(t, 'POST', '/payments', {
      type: 'payout',
      key: 'rf-payout',
      account_number: '0123456789',
      bank_code: '000013',
      bank_name: 'GTBank',
      account_name: 'Ada Lovelace',
      amount: '10.00',
      currency: 'NGN',
      narration: 'not refundable',
    });
    expect(payout.status).toBe(201);
    await settled(t, 'api_rf-payout');
    const refused = await call(t, 'POST', '/payments/rf-payout/refunds', {});
    expect(refused.status).toBe(409);
    expect(refused.body.error.details).toMatchObject({ type: 'payout' });
    expect(await t.app.refunds.refundsOf('api_rf-payout')).toEqual([]);

    expect((await call(t, 'POST', '/payments/nothing-here/refunds', {})).status).toBe(404);
    expect((await call(t, 'GET', '/payments/nothing-here/refunds')).status).toBe(404);
  });

  it('a bad body is refused naming the field, and nothing is written', async () => {
    await charge(t, 'rf-bad', '10.00');
    for (const body of [{ amount: -5 }, { amount: 10.5 }, { amount: '100' }, { refund: 'all' }]) {
      const res = await call(t, 'POST', '/payments/rf-bad/refunds', body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.error.code).toBe('invalid_refund');
      expect(res.body.error.details[0].field).toMatch(/amount|refund/);
    }
    expect(await t.app.refunds.refundsOf('api_rf-bad')).toEqual([]);
  });
});

describe('refunds: an ambiguous submission is verified by lookup, never refunded twice', () => {
  it.each([
    // Recorded, then 500: the list shows it; adopted.
    ['lost-response', 'succeeded', 1],
    // Recorded, answer held past SAYSWITCH_TIMEOUT_MS: the list shows it; adopted.
    ['hang', 'succeeded', 1],
    // 500 recording nothing: the list proves none landed; the same refund is sent again.
    ['unrecorded-500', 'succeeded', 1],
  ] as const)('refund fault %s → %s, %i refund at the gateway', async (fault, state, count) => {
    const { sandbox, t, close } = await open({ refundFault: fault, refundSettleMs: 50 });
    try {
      const c = await charge(t, `rf-${fault}`, '30.00');
      const res = await call(t, 'POST', `/payments/rf-${fault}/refunds`, { amount: 1200 });
      expect(res.status).toBe(201);
      const key = `rf1_api_rf-${fault}`;
      const refund = await settled(t, key);
      expect(refund.state).toBe(state);
      // Verified first: the history passes through unknown.
      const history = await t.app.store.history(key);
      expect(history.map((h) => h.to)).toContain('unknown');
      expect(givenBack(sandbox, c)).toMatchObject({ refunds: count, refundedMinor: 1200 });
      if (fault === 'unrecorded-500') expect(refund.unsentResubmits).toBe(1);
      else expect(refund.unsentResubmits).toBe(0);
    } finally {
      await close();
    }
  });
});

describe('refunds under the sandbox profiles', () => {
  it('strict-docs, partial refunds off: only the whole charge, answered pending then success', async () => {
    const { sandbox, t, close } = await open(
      { profile: 'strict-docs', cardFlow: 'settled', timeScale: 0.05 },
      { SAYSWITCH_PARTIAL_REFUNDS: 'false' },
    );
    try {
      const c = await charge(t, 'rf-strict', '20.00');
      const partial = await call(t, 'POST', '/payments/rf-strict/refunds', { amount: 500 });
      expect(partial.status).toBe(422);
      expect(partial.body.error.code).toBe('partial_refund_not_supported');
      expect(await t.app.refunds.refundsOf('api_rf-strict')).toEqual([]);
      const full = await call(t, 'POST', '/payments/rf-strict/refunds', {});
      expect(full.status).toBe(201);
      const refund = await settled(t, 'rf1_api_rf-strict');
      expect(refund.state).toBe('succeeded');
      const history = await t.app.store.history(refund.key);
      expect(history.map((h) => h.to)).toEqual(['queued', 'submitting', 'pending', 'succeeded']);
      expect(givenBack(sandbox, c)).toMatchObject({ refunds: 1, refundedMinor: 2000 });
    } finally {
      await close();
    }
  });

  it('a gateway that refuses partial refunds: refund.failed, nothing moved, the amount refundable again', async () => {
    const { sandbox, t, close } = await open({ refundPartial: 'rejected' });
    try {
      const c = await charge(t, 'rf-refused', '40.00');
      expect((await call(t, 'POST', '/payments/rf-refused/refunds', { amount: 1000 })).status).toBe(
        201,
      );
      const refund = await settled(t, 'rf1_api_rf-refused');
      expect(refund).toMatchObject({ state: 'failed', reason: 'gateway_rejected' });
      const events = await until(() => refundEvents(t, 'api_rf-refused'), {
        done: (e) => e.length > 0,
        what: 'refund.failed',
      });
      expect(events.map((e) => e.type)).toEqual(['refund.failed']);
      expect(givenBack(sandbox, c)).toEqual({ refundedMinor: 0, refunds: 0, reservedAtGateway: 0 });
      // Released: the whole charge can be refunded, and is.
      const summary = await call(t, 'GET', '/payments/rf-refused/refunds');
      expect(summary.body).toMatchObject({ refundableMinor: 4000, status: 'not_refunded' });
      expect((await call(t, 'POST', '/payments/rf-refused/refunds', {})).status).toBe(201);
      expect((await settled(t, 'rf2_api_rf-refused')).state).toBe('succeeded');
      expect(givenBack(sandbox, c)).toMatchObject({ refundedMinor: 4000, refunds: 1 });
    } finally {
      await close();
    }
  });

  it('hostile (an amount silently ignored): the refund that moved more than asked is handed to a person, never closed or resent', async () => {
    const { sandbox, t, close } = await open({
      profile: 'hostile',
      cardFlow: 'settled',
      timeScale: 0.01,
    });
    try {
      const c = await charge(t, 'rf-hostile', '100.00');
      const res = await call(t, 'POST', '/payments/rf-hostile/refunds', { amount: 3000 });
      expect(res.status).toBe(201);
      const refund = await settled(t, 'rf1_api_rf-hostile', 30_000);
      expect(refund.state).toBe('needs_review');
      // Sayswitch gave back all of it, once; we never sent it again.
      expect(givenBack(sandbox, c)).toMatchObject({ refunds: 1, refundedMinor: 10000 });
      const events = await until(() => refundEvents(t, 'api_rf-hostile'), {
        done: (e) => e.length > 0,
        what: 'refund.needs_review',
      });
      expect(events.map((e) => e.type)).toEqual(['refund.needs_review']);

      // A person resolves it (POST /payments/:key/resolve asks Sayswitch first: it shows another
      // amount, no final word). `failed` is refused even forced — it would make the amount
      // refundable again; `succeeded` needs force, and is recorded with who and the note.
      const path = '/payments/rf1_api_rf-hostile/resolve';
      const note = 'Sayswitch dashboard: RF refund of the whole charge';
      const failed = await call(t, 'POST', path, { outcome: 'failed', note, force: true });
      expect(failed.status).toBe(409);
      expect(failed.body).toMatchObject({ error: { code: 'gateway_unconfirmed' } });
      const unforced = await call(t, 'POST', path, { outcome: 'succeeded', note });
      expect(unforced.status).toBe(409);
      expect((await settled(t, 'rf1_api_rf-hostile')).state).toBe('needs_review');
      const forced = await call(t, 'POST', path, { outcome: 'succeeded', note, force: true });
      expect(forced.status).toBe(200);
      expect(forced.body).toMatchObject({ state: 'succeeded', resolution: { forced: true } });
      const after = await until(() => refundEvents(t, 'api_rf-hostile'), {
        done: (e) => e.length > 1,
        what: 'refund.succeeded after the resolution',
      });
      expect(after.map((e) => e.type)).toEqual(['refund.needs_review', 'refund.succeeded']);
      // Nothing was sent again.
      expect(givenBack(sandbox, c)).toMatchObject({ refunds: 1, refundedMinor: 10000 });
    } finally {
      await close();
    }
  });

  it('hostile, a lost answer while the list lags (less than RECONCILE_NOT_FOUND_GRACE): found, never resent', async () => {
    // Lookups blind for 60 ms (60 s × 0.001), the grace 200 ms: the refund shows before the
    // not-found could prove anything.
    const { sandbox, t, close } = await open({
      profile: 'hostile',
      cardFlow: 'settled',
      timeScale: 0.001,
      refundFault: 'lost-response',
    });
    try {
      const c = await charge(t, 'rf-lag', '60.00');
      expect((await call(t, 'POST', '/payments/rf-lag/refunds', {})).status).toBe(201);
      const refund = await settled(t, 'rf1_api_rf-lag');
      expect(refund).toMatchObject({ state: 'succeeded', unsentResubmits: 0 });
      expect(givenBack(sandbox, c)).toMatchObject({ refunds: 1, refundedMinor: 6000 });
    } finally {
      await close();
    }
  });

  it('idempotent-replay (our merchant_reference echoed): a lost answer is matched by it', async () => {
    const { sandbox, t, close } = await open({
      profile: 'idempotent-replay',
      timeScale: 0.01,
      refundFault: 'lost-response',
    });
    try {
      const c = await charge(t, 'rf-replay', '50.00');
      expect((await call(t, 'POST', '/payments/rf-replay/refunds', { amount: 2000 })).status).toBe(
        201,
      );
      const refund = await settled(t, 'rf1_api_rf-replay');
      expect(refund.state).toBe('succeeded');
      expect(givenBack(sandbox, c)).toMatchObject({ refunds: 1, refundedMinor: 2000 });
    } finally {
      await close();
    }
  });
});

describe('refund events reach the notification receiver', () => {
  it('refund.succeeded is delivered like the payment events (docs/notifications.md)', async () => {
    const receiver = await startWebhookReceiver();
    const { t, close } = await open(
      { refundSettleMs: 20 },
      {
        NOTIFY_URL: receiver.url,
        NOTIFY_SECRET: `whsec_${Buffer.from('refund-notify-secret-0123456789').toString('base64')}`,
      },
    );
    try {
      await charge(t, 'rf-notify', '12.00');
      expect((await call(t, 'POST', '/payments/rf-notify/refunds', {})).status).toBe(201);
      const delivered = await until(
        () =>
          receiver.received.find((w) => (w.json as { type?: string }).type === 'refund.succeeded'),
        { what: 'refund.succeeded delivered', timeoutMs: 20_000 },
      );
      expect(delivered.json).toMatchObject({
        type: 'refund.succeeded',
        data: { key: 'rf1_api_rf-notify', type: 'refund', amount: 1200, state: 'succeeded' },
      });
    } finally {
      await close();
      await receiver.close();
    }
  });
});
