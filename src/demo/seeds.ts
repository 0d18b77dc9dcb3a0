/** What the demo seeds, through the same services the CLI and HTTP API use. */
import { readFile } from 'node:fs/promises';
import type { App } from '../app/composition.ts';
import { createPayment, createPaymentDeps } from '../payments/create.ts';
import { bullJobName } from '../infra/queues/catalog.ts';
import { QUEUES } from '../infra/queues/names.ts';
import { importSubscriptions, subscriptionServiceDeps } from '../subscriptions/service.ts';

/** A handful of API charges and payouts whose amounts exercise the sandbox's outcomes. */
export async function seedApiPayments(app: App): Promise<string> {
  const deps = createPaymentDeps(app);
  const charges = ['2500.00', '1200.51', '999.52', '15000.00', '4300.54', '780.55'];
  const payouts = ['50000.00', '12500.53', '8000.58', '2000.57', '64000.00'];
  let n = 0;
  for (const [i, amount] of charges.entries()) {
    await createPayment(deps, {
      type: 'charge',
      key: `demo-charge-${i + 1}`,
      email: `customer${i + 1}@example.com`,
      amount,
      currency: i % 3 === 2 ? 'USD' : 'NGN',
      card_token: `demo_card_token_${i + 1}_0123456789abcdef`,
      narration: 'demo charge',
    });
    n++;
  }
  for (const [i, amount] of payouts.entries()) {
    await createPayment(deps, {
      type: 'payout',
      key: `demo-payout-${i + 1}`,
      account_number: `01234567${String(i).padStart(2, '0')}`,
      bank_code: '000013',
      bank_name: 'GTBank',
      account_name: `Vendor ${i + 1}`,
      amount,
      currency: 'NGN',
      narration: 'demo payout',
    });
    n++;
  }
  return `${n} API payments (charges and payouts; amounts ending .51–.58 show declines, pending, timeouts, 429s and a reversal)`;
}

/**
 * The sample subscriptions of examples/subscriptions.csv, imported through the same service as
 * `billing subs import`, then one subscription tick right away (instead of waiting for the cron)
 * so their first charges are part of the demo.
 */
export async function seedSubscriptions(app: App): Promise<string> {
  const csv = await readFile(new URL('../../examples/subscriptions.csv', import.meta.url));
  const result = await importSubscriptions(subscriptionServiceDeps(app), csv);
  if (!result.ok) {
    throw new Error(
      `examples/subscriptions.csv: ${result.errors.map((e) => JSON.stringify(e)).join('; ')}`,
    );
  }
  const queue = app.dispatcher.queue(QUEUES.subscriptions);
  const job = await queue.add(
    bullJobName('subscriptions.tick'),
    {},
    { jobId: `demo-tick-${app.clock.now()}` },
  );
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return `${result.rows} subscriptions from examples/subscriptions.csv (Africa/Lagos, America/New_York, Europe/London, Asia/Kolkata, …) and billed their first periods`;
}
