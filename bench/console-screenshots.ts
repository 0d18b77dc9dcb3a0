/**
 * Screenshots of the operator console for the README (docs/console.md): starts the sandbox and
 * the application (api, worker, reconciler) on Redis under a throwaway key prefix, makes
 * demo-like data through the same services as the API (payments, a payout batch with declines,
 * 3-D Secure charges nobody completes, which end in needs_review, one resolved by an operator,
 * subscriptions), then opens each page in headless Chromium at 1280×800 and saves
 * `docs/images/console-*.png`. Deletes its keys afterwards (never a FLUSH).
 *
 *   node --import tsx bench/console-screenshots.ts [--out docs/images]
 *
 * Redis: `REDIS_URL` (default redis://127.0.0.1:6379). Chromium: `CHROMIUM_PATH` or
 * /usr/bin/chromium.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launchBrowser } from '../test/support/browser.ts';
import { openApp, startRoles } from '../src/app/composition.ts';
import { submitBatch } from '../src/batches/ingest.ts';
import { approveBatch } from '../src/batches/operations.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/infra/logger.ts';
import { createPayment, createPaymentDeps } from '../src/payments/create.ts';
import { resolveDeps, resolvePayment } from '../src/payments/resolve.ts';
import { startSandbox } from '../src/sandbox/index.ts';
import {
  applyAction,
  createSubscriptionFromBody,
  subscriptionServiceDeps,
} from '../src/subscriptions/service.ts';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/images' } } });
const OUT = values.out;
const USER = 'ops';
const PASSWORD = 'screenshots';

/** Waits until `fn` is true (every 100 ms, at most `ms`). */
async function until(what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const sandbox = await startSandbox({ port: 0, settleMs: 50, cardFlow: '3ds2' });
  const prefix = `shots_${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    SAYSWITCH_SECRET_KEY: 'sk_test_sandbox',
    SAYSWITCH_BASE_URL: sandbox.url,
    DATA_ENCRYPTION_KEY: '22'.repeat(32),
    API_TOKEN: 'screenshots-api-token-0123456789',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: prefix,
    DASHBOARD_USER: USER,
    DASHBOARD_PASSWORD: PASSWORD,
    REQUIRES_ACTION_WINDOW: '1s',
    RECONCILE_SCHEDULE: '100ms,200ms,300ms,400ms,600ms',
    BATCH_APPROVAL: 'payouts',
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
  });
  const app = openApp(config, createLogger({ level: 'silent' }));
  const running = await startRoles(app, ['api', 'worker', 'reconciler']);
  const address = running.http?.server.address();
  if (!address || typeof address !== 'object') throw new Error('the api role did not listen');
  const base = `http://127.0.0.1:${address.port}`;
  const pay = createPaymentDeps(app);
  try {
    // Charges on 3-D Secure cards: three payers complete the challenge, three never do.
    const customers = ['ada', 'grace', 'alan', 'edsger', 'barbara', 'donald'];
    for (const [i, name] of customers.entries()) {
      await createPayment(pay, {
        type: 'charge',
        key: `order-${1001 + i}`,
        email: `${name}@example.com`,
        amount: `${(i + 1) * 1250}.${i % 2 === 0 ? '00' : '50'}`,
        currency: i % 3 === 0 ? 'USD' : 'NGN',
        card_token: `tok_demo_${name}_0123456789abcdef`,
        narration: `order ${1001 + i}`,
      });
    }
    for (const i of [0, 1, 2]) {
      const key = `api_order-${1001 + i}`;
      await until(
        `${key} requires_action`,
        async () => (await app.store.get(key))?.state === 'requires_action',
      );
      const intent = await app.store.get(key);
      sandbox.authenticate(intent!.reference, 'complete');
    }
    for (const i of [3, 4, 5]) {
      const key = `api_order-${1001 + i}`;
      await until(
        `${key} needs_review`,
        async () => (await app.store.get(key))?.state === 'needs_review',
      );
    }
    // One of them: the payer completed it late; an operator resolves it after checking.
    const late = await app.store.get('api_order-1004');
    sandbox.authenticate(late!.reference, 'complete');
    await resolvePayment(resolveDeps(app), 'api_order-1004', {
      outcome: 'succeeded',
      note: 'payer completed 3DS late; Sayswitch shows it paid',
      force: false,
      by: `console:${USER}`,
    });

    // A payout run: 120 rows, every eighth declined (amounts ending in .51), approved by ops.
    const rows = Array.from({ length: 120 }, (_, i) => {
      const amount = i % 8 === 0 ? '2500.51' : `${2500 + (i % 5) * 250}.00`;
      return `pay-${i + 1},0123456789,058,GTBank,Supplier ${i + 1},${amount},NGN,invoice ${i + 1},Q${(i % 4) + 1}`;
    });
    await submitBatch(app, {
      input: `reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,meta_quarter\n${rows.join('\n')}\n`,
      type: 'payout',
      id: 'payouts-2026-12',
      sourceName: 'payouts-december.csv',
      submittedBy: 'API_TOKEN',
    });
    await approveBatch(app, 'payouts-2026-12', `console:${USER}`);
    await until(
      'the batch completed',
      async () => (await app.batches.get('payouts-2026-12'))?.state === 'completed',
    );

    const subs = subscriptionServiceDeps(app);
    const plans: [string, string, string][] = [
      ['sub-ada', 'ada@example.com', '4999.00'],
      ['sub-grace', 'grace@example.com', '12000.00'],
      ['sub-alan', 'alan@example.com', '2500.50'],
      ['sub-edsger', 'edsger@example.com', '999.99'],
    ];
    for (const [id, email, amount] of plans) {
      await createSubscriptionFromBody(subs, {
        id,
        customer_email: email,
        card_token: `tok_sub_${id}_0123456789abcdef`,
        amount,
        currency: 'NGN',
        interval: 'month',
        interval_count: 1,
        anchor: '2027-01-31T09:00:00+01:00',
        timezone: 'Africa/Lagos',
      });
    }
    await applyAction(subs, 'sub-alan', 'pause');
    await applyAction(subs, 'sub-edsger', 'cancel', { atPeriodEnd: true });

    mkdirSync(OUT, { recursive: true });
    const browser = await launchBrowser();
    const ctx = await browser.newContext({
      httpCredentials: { username: USER, password: PASSWORD },
      viewport: { width: 1280, height: 800 },
    });
    const page = await ctx.newPage();
    const shots: [string, string][] = [
      ['console-payments.png', '/console/payments'],
      ['console-payment-timeline.png', '/console/payments/api_order-1004'],
      ['console-inbox.png', '/console/inbox'],
      ['console-review.png', '/console/inbox/api_order-1005'],
      ['console-batch.png', '/console/batches/payouts-2026-12'],
      ['console-subscriptions.png', '/console/subscriptions'],
    ];
    for (const [file, path] of shots) {
      await page.goto(`${base}${path}`);
      await page.screenshot({ path: join(OUT, file) });
      process.stderr.write(`saved ${join(OUT, file)}\n`);
    }
    await browser.close();
  } finally {
    await running.stop(5_000);
    let cursor = '0';
    do {
      const [next, keys] = await app.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await app.redis.del(...keys);
    } while (cursor !== '0');
    await app.close();
    await sandbox.close();
  }
}

await main();
