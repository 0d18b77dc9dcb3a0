/**
 * A payment re-posted after Redis lost its data (docs/operations.md, "Redis lost its data"),
 * against a Sayswitch that refuses a duplicate reference in no words (`400-opaque`: the adapter
 * cannot tell it from any validation failure). The lost store had charged the reference; the new
 * intent's first submission meets the refusal.
 *
 * - Re-posted while the loss is unacknowledged: the intent is created with `afterDataLoss`, so the
 *   refusal is verified, not adopted, and the payment ends as the gateway holds it (succeeded),
 *   its money moved once, under its one reference.
 * - Re-posted after the acknowledgement: nothing tells the store the reference was ever sent, and
 *   a first submission's refusal is adopted as `failed` although the money moved. That is why the
 *   runbook re-posts before acknowledging; this case pins down what the mark changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Intent } from '../../src/kernel/payment.ts';
import { createPayment } from '../../src/payments/create.ts';
import { toView } from '../../src/payments/view.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix } from '../support/redis.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const FINAL = new Set(['succeeded', 'failed', 'reversed', 'needs_review']);

const charge = (key: string) => ({
  type: 'charge',
  key,
  email: 'lost@example.com',
  amount: '25.00',
  currency: 'NGN',
  card_token: 'tok_data_loss_0123456789',
});

let sandbox: Sandbox;
let t: TestApp;

/** Posts the charge and returns the intent it created (fails the test on any other answer). */
async function post(key: string): Promise<Intent> {
  const r = await createPayment(createDeps(t.app), charge(key));
  if (r.status !== 'created') throw new Error(`${key}: ${JSON.stringify(r)}`);
  return r.intent;
}

async function final(key: string): Promise<Intent> {
  const intent = await until(() => t.app.store.get(key), {
    done: (i) => i !== undefined && FINAL.has(i.state),
    what: `${key} final`,
    timeoutMs: 20_000,
  });
  return intent!;
}

beforeAll(async () => {
  sandbox = await startTestSandbox({ duplicateReference: '400-opaque' });
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['worker', 'reconciler'] });
});

afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

describe('a payment re-posted after Redis lost its data', () => {
  it('is marked afterDataLoss while the loss is unacknowledged, and a refusal in no words is verified', async () => {
    for (const key of ['dl_before', 'dl_after']) {
      await post(key);
      expect((await final(`api_${key}`)).state).toBe('succeeded');
    }

    // The data loss: every key of the deployment gone (the epoch record too), as after a Redis
    // restarted without its AOF; the platform watch's next check records it.
    await cleanupPrefix(t.app.redis, t.prefix);
    const seen = await t.app.epoch.check(Date.now());
    expect(seen.verdict).toBe('detected');
    expect(t.app.epoch.isLost()).toBe(true);

    // Re-posted before the acknowledgement (the runbook's order).
    const reposted = await post('dl_before');
    expect(reposted.afterDataLoss).toBeDefined();
    const stored = await t.app.store.get('api_dl_before');
    expect(stored?.afterDataLoss).toBe(reposted.afterDataLoss);
    expect(toView(stored!, []).afterDataLoss).toBe(new Date(reposted.afterDataLoss!).toISOString());
    const recovered = await final('api_dl_before');
    expect(recovered.state).toBe('succeeded');
    expect(recovered.reference).toBe('api_dl_before_1');
    const history = await t.app.store.history('api_dl_before');
    // The refusal sent it to verification; nothing was adopted as failed.
    expect(history.map((h) => h.to)).toContain('unknown');
    expect(history.map((h) => h.to)).not.toContain('failed');
    expect(sandbox.ledger().activity.api_dl_before_1).toMatchObject({
      submissions: 2,
      duplicates: 1,
      moves: 1,
    });

    // Acknowledged: an intent created now is a first submission as far as anything knows.
    expect(await t.app.epoch.acknowledge(Date.now())).toBe(true);
    const late = await post('dl_after');
    expect(late.afterDataLoss).toBeUndefined();
    const adopted = await final('api_dl_after');
    expect(adopted.state).toBe('failed');
    expect(adopted.reason).toBe('gateway_rejected');
    expect(sandbox.ledger().references.api_dl_after_1?.moneyMoved).toBe(true);
  });
});
