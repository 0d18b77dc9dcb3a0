/**
 * `billing subs show` in text: a subscription whose billing is held by an unresolved renewal says
 * so, with the charge, its state and who it waits for (its next charge is `-` then).
 */
import { describe, expect, it } from 'vitest';
import { subscriptionDetails } from '../../src/cli/commands/subs.ts';
import type { SubscriptionView } from '../../src/subscriptions/view.ts';

const view: SubscriptionView = {
  id: 'sub_1',
  customer_email: 'a@example.com',
  amount: '10.00',
  amount_minor: 1000,
  currency: 'NGN',
  interval: 'month',
  interval_count: 1,
  anchor: '2026-01-31T09:00:00.000Z',
  timezone: 'Africa/Lagos',
  status: 'active',
  current_period_start: '2026-03-31T08:00:00.000Z',
  current_period_end: '2026-04-30T08:00:00.000Z',
  next_charge_at: null,
  billing_held: {
    key: 'sub_1-p3',
    reference: 'sub_1-p3_1',
    state: 'unknown',
    awaiting: 'gateway',
    since: '2026-03-31T08:00:05.000Z',
  },
  next_period_start: '2026-04-30T08:00:00.000Z',
  metadata: {},
  dunning: [],
  skipped_periods: 0,
  trial_end: null,
  cancel_at_period_end: false,
  cancel_at: null,
  resume_at: null,
  test_clock: null,
  created_at: '2026-01-31T09:00:00.000Z',
  updated_at: '2026-03-31T08:00:05.000Z',
};

describe('billing subs show (text)', () => {
  it('names the held renewal and what it waits for', () => {
    const text = subscriptionDetails(view).join('\n');
    expect(text).toContain('  next charge     -');
    expect(text).toContain(
      '  billing held    sub_1-p3 (sub_1-p3_1) unknown, awaiting gateway since 2026-03-31T08:00:05.000Z',
    );
  });

  it('prints no hold line when billing is not held', () => {
    expect(subscriptionDetails({ ...view, billing_held: null }).join('\n')).not.toContain(
      'billing held',
    );
  });

  it('keeps a space between a metadata key and its value, however long the key', () => {
    const text = subscriptionDetails({
      ...view,
      metadata: { plan: 'gold', customer_ref: 'CUS-1001' },
    }).join('\n');
    expect(text).toContain('  meta_plan       gold');
    expect(text).toContain('  meta_customer_ref CUS-1001');
  });
});
