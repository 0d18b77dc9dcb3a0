/**
 * The store's `neverSent` check (TransitionOptions.neverSent, read in TRANSITION_INTENT in the same
 * step as the write): a batch cancel fails a `queued` row only while its reference cannot exist at
 * the gateway (payments/resubmission.ts `mayExistAtGateway`). A row re-queued after a verify proved
 * its reference unsent (the earlier request did leave, and may still land), one whose reference the
 * gateway showed (a check's late `pending` answer recorded after another check re-queued it), or
 * one created while a Redis data loss was unacknowledged (the lost store may have sent it) is refused:
 * `failed (canceled)` over a reference that may have moved money would be a failure inferred.
 */
import { describe, expect, it } from 'vitest';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { appWithoutRoles } from '../support/app.ts';
import { createTestCharge, moveTestIntent } from '../support/intents.ts';

// No roles: nothing claims the rows.
const env = appWithoutRoles();

/** The cancel of a batch row, as batches/operations.ts makes it. */
const cancel = (key: string) =>
  env.t.app.store.transition(key, 'failed', 10, {
    expectAttempt: 1,
    onlyFrom: ['queued'],
    neverSent: true,
    reason: 'canceled',
  });

describe('canceling a queued row', () => {
  it('fails a row whose reference was never sent', async () => {
    const key = await createTestCharge(env.t.app.store, 'never-sent-plain');
    expect(await cancel(key)).toMatchObject({ ok: true, from: 'queued' });
  });

  it('refuses a row re-queued after a verify proved its reference unsent', async () => {
    const key = await createTestCharge(env.t.app.store, 'never-sent-resubmitted');
    await moveTestIntent(env.t.app.store, key, 'submitting', 2, { leaseUntil: 60_002, sentAt: 2 });
    await moveTestIntent(env.t.app.store, key, 'unknown', 3);
    const requeued = await env.t.app.store.transition(key, 'queued', 4, {
      expectAttempt: 1,
      unsentResubmit: true,
    });
    expect(requeued.ok).toBe(true);
    expect(await cancel(key)).toMatchObject({ ok: false, why: 'refused', state: 'queued' });
    expect((await env.t.app.store.get(key))?.state).toBe('queued');
  });

  it('refuses a row whose reference the gateway showed', async () => {
    const key = await createTestCharge(env.t.app.store, 'never-sent-seen');
    expect(await env.t.app.store.markSeenAtGateway(key, 1, 5)).toBe(true);
    expect(await cancel(key)).toMatchObject({ ok: false, why: 'refused', state: 'queued' });
    expect((await env.t.app.store.get(key))?.state).toBe('queued');
  });

  it('refuses a row created while a data loss was unacknowledged', async () => {
    const lost = new RedisIntentStore(env.t.app.redis, env.t.prefix, {
      dataLossUnacknowledged: () => true,
    });
    const key = 'api_never-sent-lost' as IntentKey;
    await lost.create(
      {
        key,
        type: 'charge',
        origin: 'api',
        amount: 1000 as AmountMinor,
        currency: 'NGN',
        payee: { kind: 'charge', email: 'p@example.com', cardTokenSealed: 'sealed' },
      },
      1,
    );
    expect(await cancel(key)).toMatchObject({ ok: false, why: 'refused', state: 'queued' });
    expect((await env.t.app.store.get(key))?.state).toBe('queued');
  });
});
