/**
 * A subscription id is one id ignoring case: the import file refuses `gym-001` and `GYM-001` as
 * one id twice (docs/subscriptions.md), so a later file or `POST /subscriptions` must not create
 * `GYM-001` beside a stored `gym-001` — two subscriptions, two intents per period
 * (`sub_gym-001_…`, `sub_GYM-001_…`), the customer charged twice every period. The store keeps
 * every id by its lower-case form and refuses a create that is another id in another case, in
 * the create's own atomic step (SAVE_SUBSCRIPTION).
 */
import { describe, expect, it } from 'vitest';
import {
  createSubscriptionFromBody,
  importSubscriptions,
} from '../../src/subscriptions/service.ts';
import { subsPerTest } from '../support/subscription-harness.ts';

const { setup } = subsPerTest();

const body = (id: string) => ({
  id,
  customer_email: 'ada@example.com',
  card_token: 'tok_card_secret_4111',
  amount: '1500',
  currency: 'NGN',
  interval: 'month',
  anchor: '2025-01-31T09:00:00+01:00',
  timezone: 'Africa/Lagos',
});

describe('subscription ids ignoring case', () => {
  it('does not create a second subscription whose id differs from a stored one only by case', async () => {
    const { h } = await setup('2025-01-01T00:00:00Z');
    const first = await createSubscriptionFromBody(h.service, body('gym-001'));
    expect(first.status).toBe('created');

    // JSON: the stored one answers, as a conflict (409), and nothing is created.
    const json = await createSubscriptionFromBody(h.service, body('GYM-001'));
    expect(json).toMatchObject({ status: 'conflict', subscription: { id: 'gym-001' } });

    const b = body('Gym-001');
    const csv =
      'id,customer_email,card_token,amount,currency,interval,anchor,timezone\n' +
      `${b.id},${b.customer_email},${b.card_token},${b.amount},${b.currency},${b.interval},${b.anchor},${b.timezone}\n`;
    const imported = await importSubscriptions(h.service, csv);
    expect(imported).toMatchObject({
      ok: false,
      errors: [
        {
          line: 2,
          column: 'id',
          message:
            "id Gym-001 is subscription gym-001's in another case (ids are one id ignoring case)",
        },
      ],
    });

    expect(await h.subs.get('GYM-001')).toBeUndefined();
    expect(await h.subs.get('Gym-001')).toBeUndefined();
    // The store refuses it too, whoever calls it (a race past the service's read).
    const other = await h.subs.create({ ...(await h.subs.get('gym-001'))!.sub, id: 'GYM-001' });
    expect(other).toMatchObject({ created: false, sub: { id: 'gym-001' } });
    expect(await h.subs.get('GYM-001')).toBeUndefined();
  });

  it('subscriptions stored before the lower-case index are indexed before the first create', async () => {
    const { h } = await setup('2025-01-01T00:00:00Z');
    expect((await createSubscriptionFromBody(h.service, body('old-001'))).status).toBe('created');
    // As a deployment whose subscriptions predate the index: neither the index nor its marker.
    await h.app.redis.del(`${h.prefix}:subs:ids-folded`, `${h.prefix}:subs:ids-folded:built`);

    const json = await createSubscriptionFromBody(h.service, body('OLD-001'));
    expect(json).toMatchObject({ status: 'conflict', subscription: { id: 'old-001' } });
    expect(await h.subs.get('OLD-001')).toBeUndefined();
    // Another id is still created.
    expect((await createSubscriptionFromBody(h.service, body('new-002'))).status).toBe('created');
  });
});
