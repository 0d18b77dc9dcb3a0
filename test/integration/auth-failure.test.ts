/**
 * 401/403 from the gateway pause the queue and publish an alert rather than burning through every
 * job; the payment stays `queued` (provably unsent) and completes once credentials are fixed and
 * the queue resumed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createPayment } from '../../src/payments/create.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox | undefined;
const apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
  await sandbox?.close();
  sandbox = undefined;
});

describe('gateway auth failure', () => {
  it('pauses the queue, raises one alert, keeps the payment queued; resumes cleanly', async () => {
    sandbox = await startTestSandbox();
    const wrong = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['worker'],
      env: { SAYSWITCH_SECRET_KEY: 'sk_test_wrong_key_123' },
    });
    apps.push(wrong);
    const deps = createDeps(wrong.app);
    for (let i = 0; i < 5; i++) {
      await createPayment(deps, {
        type: 'charge',
        key: `auth${i}`,
        email: 'a@example.com',
        amount: '12.00',
        currency: 'NGN',
        card_token: 'tok_auth_0123456789',
      });
    }
    const queue = wrong.app.dispatcher.queue('charges');
    await until(() => queue.isPaused(), { what: 'the charges queue paused', timeoutMs: 10_000 });
    expect(await queue.isPaused()).toBe(true);

    const alerts = (await wrong.app.events.read()).filter(
      (e) => e.type === 'alert.gateway_auth_failed',
    );
    expect(alerts.length).toBeGreaterThanOrEqual(1);
    expect(new Set(alerts.map((a) => a.id)).size).toBe(alerts.length);
    // Calls already in flight when the queue paused get their own 401 a little later, and put
    // their payment back too: every one ends queued, none moved money.
    for (let i = 0; i < 5; i++) {
      await until(() => wrong.app.store.get(`api_auth${i}`), {
        done: (p) => p?.state === 'queued',
        what: () => `api_auth${i} back in queued`,
        timeoutMs: 10_000,
      });
    }
    expect(Object.keys(sandbox.ledger().references)).toHaveLength(0);
    const prefix = wrong.prefix;
    await wrong.close({ keepData: true });
    apps.length = 0;

    // Credentials fixed (same Redis prefix): resume, and every payment completes once.
    const fixed = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['worker', 'reconciler'],
      prefix,
    });
    apps.push(fixed);
    const q = fixed.app.dispatcher.queue('charges');
    await q.resume();
    // Parked jobs wait out their delay; promote them so the test does not wait a minute.
    for (const job of await q.getDelayed()) await job.promote();
    const states = await until(
      () =>
        Promise.all(
          [0, 1, 2, 3, 4].map(async (i) => (await fixed.app.store.get(`api_auth${i}`))?.state),
        ),
      {
        done: (all) => all.every((s) => s === 'succeeded'),
        what: 'every payment succeeded',
        timeoutMs: 15_000,
      },
    );
    for (const state of states) expect(state).toBe('succeeded');
    expect(Object.values(sandbox.ledger().references).filter((e) => e.moneyMoved)).toHaveLength(5);
  }, 40_000);
});
