/**
 * Sweeps alone (webhooks off, per-intent check jobs deleted): the reconcile sweep job scheduler
 * still drives 52, 53, 54, 55 and 58 to their final states, in agreement with the ledger; and
 * `billing reconcile` runs a sweep on demand.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createPayment } from '../../src/payments/create.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, FAST_ENV, startTestApp, type TestApp } from '../support/app.ts';
import { runBilling } from '../support/child.ts';
import { until } from '../support/poll.ts';
import { getRedisUrl } from '../support/redis.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox | undefined;
let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  await sandbox?.close();
  t = undefined;
  sandbox = undefined;
});

async function waitState(app: TestApp, key: string, want: string, timeoutMs = 20_000) {
  const intent = await until(() => app.app.store.get(key), {
    done: (i) => i?.state === want,
    what: `${key} ${want}`,
    timeoutMs,
    intervalMs: 50,
  });
  return intent!;
}

describe('reconcile sweep', () => {
  it('finalizes pending and unknown payments even when their check jobs are lost', async () => {
    sandbox = await startTestSandbox({ settleMs: 300, hangMs: 1_000 });
    t = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['worker', 'reconciler', 'scheduler'],
      env: {
        RECONCILE_CRON: '* * * * * *',
        RECONCILE_SCHEDULE: '500ms,1s,1s,2s,3s',
        PAYOUT_WATCH_SCHEDULE: '500ms,1s',
      },
    });
    const app = t;
    const deps = createDeps(app.app);
    const cases: [string, string, string][] = [
      ['52', 'succeeded', 'succeeded'],
      ['53', 'failed', 'failed'],
      ['54', 'succeeded', 'succeeded'],
      ['55', 'succeeded', 'succeeded'],
      ['58', 'succeeded', 'reversed'],
    ];
    for (const [rem] of cases) {
      await createPayment(deps, {
        type: 'charge',
        key: `sc${rem}`,
        email: 's@example.com',
        amount: `30.${rem}`,
        currency: 'NGN',
        card_token: 'tok_sweep_0123456789',
      });
      await createPayment(deps, {
        type: 'payout',
        key: `sp${rem}`,
        account_number: '0123456789',
        bank_code: '000013',
        bank_name: 'GTBank',
        account_name: 'Sweep Only',
        amount: `30.${rem}`,
        currency: 'NGN',
        narration: 'sweep test',
      });
    }
    // Wait until every submission has been answered, then lose every scheduled check job.
    for (const [rem] of cases) {
      for (const key of [`api_sc${rem}`, `api_sp${rem}`]) {
        await until(async () => (await app.app.store.get(key))?.state, {
          done: (s) => s !== undefined && s !== 'queued' && s !== 'submitting',
          what: `${key} answered`,
          timeoutMs: 20_000,
        });
      }
    }
    const reconcileQueue = app.app.dispatcher.queue('reconcile');
    const checks = (await reconcileQueue.getDelayed()).filter((job) => job.name === 'check');
    expect(checks.length).toBeGreaterThan(0);
    // A check can fall due and be taken by the worker between getDelayed and remove; that one
    // simply runs (BullMQ refuses to remove a locked job). Every other check is lost.
    let removed = 0;
    for (const job of checks) {
      try {
        await job.remove();
        removed += 1;
      } catch (error) {
        if (!String(error).includes('locked by another worker')) throw error;
      }
    }
    expect(removed).toBeGreaterThan(0);

    for (const [rem, chargeState, payoutState] of cases) {
      const c = await waitState(app, `api_sc${rem}`, chargeState);
      const p = await waitState(app, `api_sp${rem}`, payoutState);
      const ledger = sandbox.ledger().references;
      expect(ledger[c.reference]?.moneyMoved ?? false).toBe(chargeState === 'succeeded');
      expect(ledger[p.reference]?.moneyMoved ?? false).toBe(payoutState === 'succeeded');
    }
  }, 60_000);

  it('billing reconcile runs a sweep on demand and reports what it did', async () => {
    sandbox = await startTestSandbox();
    t = await startTestApp({ sandboxUrl: sandbox.url, roles: [] });
    const env = {
      ...FAST_ENV,
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: t.prefix,
      SAYSWITCH_BASE_URL: sandbox.url,
    };
    const ok = await runBilling(['reconcile', '--older-than', '5m', '--json'], env);
    expect(ok.code, ok.output).toBe(0);
    expect(JSON.parse(ok.output.trim().split('\n').pop() ?? '{}')).toMatchObject({
      due: 0,
      forced: 0,
    });
    const bad = await runBilling(['reconcile', '--older-than', 'soon'], env);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('--older-than');
  }, 60_000);
});
