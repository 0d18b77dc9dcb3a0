/** Intents for store-level tests: written straight to the store, as an API charge would be. */
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { IntentState } from '../../src/kernel/intent.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { Payee } from '../../src/kernel/payment.ts';
import type { IntentStore, RefundStore } from '../../src/kernel/ports.ts';

/** Creates `api_<name>`: a queued NGN intent of `amount` to `payee` on attempt 1, created `at`. */
async function createTestApiIntent(
  store: IntentStore,
  name: string,
  at: number,
  amount: AmountMinor,
  payee: Payee,
): Promise<IntentKey> {
  const key = `api_${name}` as IntentKey;
  await store.create({ key, type: payee.kind, origin: 'api', amount, currency: 'NGN', payee }, at);
  return key;
}

/**
 * Creates `api_<name>`: a queued NGN charge of `amount` (10.00 by default) on attempt 1, created
 * `at` (1 by default).
 */
export function createTestCharge(
  store: IntentStore,
  name: string,
  at = 1,
  amount = 1000 as AmountMinor,
): Promise<IntentKey> {
  return createTestApiIntent(store, name, at, amount, {
    kind: 'charge',
    email: 'p@example.com',
    cardTokenSealed: 'sealed',
  });
}

/**
 * Creates `api_<name>`: a queued NGN payout of `amount` (10.00 by default) to a GTBank account on
 * attempt 1, created `at` (1 by default).
 */
export function createTestPayout(
  store: IntentStore,
  name: string,
  at = 1,
  amount = 1000 as AmountMinor,
): Promise<IntentKey> {
  return createTestApiIntent(store, name, at, amount, {
    kind: 'payout',
    accountNumber: '0123456789',
    bankCode: '058',
    bankName: 'GTBank',
    accountName: 'Ada Obi',
    narration: 'payout',
    paymentMode: 'bank',
  });
}

/**
 * Creates `api_<name>` (as {@link createTestCharge}), claims it at 2 and leaves it `unknown` at 3,
 * as a worker whose call ended without an answer does; with `to: 'needs_review'` moves it on to
 * `needs_review` at 4, as the reconciler does when its checks run out.
 */
export async function unresolvedTestCharge(
  store: IntentStore,
  name: string,
  to: 'unknown' | 'needs_review' = 'unknown',
): Promise<IntentKey> {
  const key = await createTestCharge(store, name);
  const steps: [IntentState, number][] = [
    ['submitting', 2],
    ['unknown', 3],
    ...(to === 'needs_review' ? ([['needs_review', 4]] as [IntentState, number][]) : []),
  ];
  for (const [state, at] of steps) {
    const res = await store.transition(key, state, at, {
      expectAttempt: 1,
      ...(state === 'submitting' ? { patch: { leaseUntil: at + 60_000, sentAt: at } } : {}),
    });
    if (!res.ok) throw new Error(`${key}: the move to ${state} was refused`);
  }
  return key;
}

/** Moves attempt 1 of `key` to `to` at `at` with `patch`; throws when the store refuses. */
export async function moveTestIntent(
  store: IntentStore,
  key: string,
  to: IntentState,
  at: number,
  patch: Record<string, unknown> = {},
) {
  const res = await store.transition(key, to, at, { expectAttempt: 1, patch });
  if (!res.ok) throw new Error(`${key}: the move to ${to} was refused (${res.why})`);
  return res.intent;
}

/** Reserves a refund of `amount` of `chargeKey` at `now` (requested by `test`); throws unless created. */
export async function reserveTestRefund(
  refunds: RefundStore,
  chargeKey: string,
  amount: number,
  now: number,
) {
  const res = await refunds.reserve({
    chargeKey,
    amount: amount as AmountMinor,
    requestHash: `h${now}`,
    requestedBy: 'test',
    now,
  });
  if (res.status !== 'created') throw new Error(`reservation ${res.status}`);
  return res.intent;
}
