/**
 * The rules of an operator's resolution (payments/resolve.ts) that the HTTP test
 * (payments-resolve.test.ts) does not reach, on real Redis with the gateway's answer stubbed:
 * - an `unknown` payment is resolvable only once it is older than RESOLVE_UNKNOWN_AFTER: before,
 *   the reconciler is still checking it;
 * - a `failed` the gateway agrees with records the gateway's own reason (`insufficient_funds`),
 *   which dunning and the results read, not a generic `declined`;
 * - a refund is recorded `failed` only on Sayswitch's word, never forced: a failed refund gives its
 *   amount back to the charge's refundable total, so a forced one could refund the money twice
 *   (docs/refunds.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LookupOutcome, PaymentGateway } from '../../src/kernel/ports.ts';
import { resolveDeps, resolvePayment } from '../../src/payments/resolve.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import {
  createTestCharge,
  moveTestIntent,
  reserveTestRefund,
  unresolvedTestCharge,
} from '../support/intents.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox;
let t: TestApp;

// No roles: the test resolves by hand.
beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: [],
    env: { RESOLVE_UNKNOWN_AFTER: '1h' },
  });
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

/** The app's gateway, whose verify answers `outcome` for any reference. */
function verifying(outcome: Omit<LookupOutcome, 'reference'>): PaymentGateway {
  const gateway = Object.create(t.app.gateway) as PaymentGateway;
  gateway.verifyCharge = (reference) => Promise.resolve({ ...outcome, reference } as LookupOutcome);
  return gateway;
}

/** resolvePayment at `now`, the gateway answering `outcome`. */
function resolveAt(now: number, outcome: Omit<LookupOutcome, 'reference'>) {
  return (key: string, req: Parameters<typeof resolvePayment>[2]) =>
    resolvePayment(
      { ...resolveDeps(t.app), gateway: verifying(outcome), clock: { now: () => now } },
      key,
      req,
    );
}

const HOUR = 3_600_000;

describe('resolving an unknown payment', () => {
  it('is refused until RESOLVE_UNKNOWN_AFTER has passed, even forced', async () => {
    // Unknown since 3 (unresolvedTestCharge).
    const key = await unresolvedTestCharge(t.app.store, 'rules-young');
    const req = { outcome: 'succeeded' as const, note: 'paid', force: true, by: 'test' };
    const paid = { status: 'succeeded' as const };
    expect(await resolveAt(3 + HOUR - 1, paid)(key, req)).toMatchObject({
      status: 'not_resolvable',
    });
    expect((await t.app.store.get(key))?.state).toBe('unknown');
    expect(await resolveAt(3 + HOUR, paid)(key, req)).toMatchObject({
      status: 'resolved',
      forced: false,
    });
  });
});

describe('a failed resolution the gateway agrees with', () => {
  it("records the gateway's reason", async () => {
    const key = await unresolvedTestCharge(t.app.store, 'rules-reason', 'needs_review');
    const short = { status: 'failed' as const, reason: 'insufficient_funds' as const };
    const res = await resolveAt(10, short)(key, {
      outcome: 'failed',
      note: 'Sayswitch shows it failed',
      force: false,
      by: 'test',
    });
    expect(res).toMatchObject({ status: 'resolved', forced: false });
    expect(await t.app.store.get(key)).toMatchObject({
      state: 'failed',
      reason: 'insufficient_funds',
    });
  });
});

describe('a refund in review that Sayswitch does not show as failed', () => {
  it('is not recorded failed, even forced', async () => {
    const chargeKey = await createTestCharge(t.app.store, 'rules-refund');
    await moveTestIntent(t.app.store, chargeKey, 'submitting', 2, {
      leaseUntil: 60_002,
      sentAt: 2,
    });
    await moveTestIntent(t.app.store, chargeKey, 'succeeded', 3);
    const refund = await reserveTestRefund(t.app.refunds, chargeKey, 500, 10);
    await moveTestIntent(t.app.store, refund.key, 'submitting', 11, {
      leaseUntil: 60_011,
      sentAt: 11,
    });
    await moveTestIntent(t.app.store, refund.key, 'unknown', 12);
    await moveTestIntent(t.app.store, refund.key, 'needs_review', 13);
    // Sayswitch lists no refund of the charge: no final answer.
    const gateway = Object.create(t.app.gateway) as PaymentGateway;
    gateway.refundsOf = () => Promise.resolve([]);
    const res = await resolvePayment(
      { ...resolveDeps(t.app), gateway, clock: { now: () => 20 } },
      refund.key,
      { outcome: 'failed', note: 'customer says nothing came back', force: true, by: 'test' },
    );
    expect(res).toMatchObject({ status: 'gateway_unconfirmed' });
    expect((await t.app.store.get(refund.key))?.state).toBe('needs_review');
  });
});
