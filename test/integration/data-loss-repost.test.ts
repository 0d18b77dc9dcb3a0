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
 * - A batch file re-posted, the failed rows retried, and a refund asked again while the loss is
 *   unacknowledged: batch rows (every batch path creates them through `createBatchRows`) and
 *   refunds (the reservation script) are marked as single intents are. Unmarked, a row whose payout
 *   moved would end `failed` (`gateway_rejected`) and "retry failed rows" would pay it again under
 *   a new reference; a refund that went back would end `failed`, its amount refundable again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryFailedBatch } from '../../src/batches/operations.ts';
import { submitBatch } from '../../src/batches/ingest.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import { createPayment } from '../../src/payments/create.ts';
import { createRefund, refundDeps } from '../../src/payments/refunds/create.ts';
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

/** A payout batch file: `ok` pays out, `no` is declined (the sandbox declines amounts ending 51). */
const BATCH_CSV = [
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration',
  'ok,0123456789,058,GTBank,Ada Obi,40.00,NGN,data loss',
  'no,0123456789,058,GTBank,Ada Obi,40.51,NGN,data loss',
].join('\n');

async function postBatch(id: string): Promise<void> {
  const r = await submitBatch(t.app, { input: `${BATCH_CSV}\n`, type: 'payout', id });
  expect(r.status, JSON.stringify(r)).toBe('created');
}

/** Asks for a full refund of `api_<key>` and returns the refund it created. */
async function refund(key: string): Promise<Intent> {
  const r = await createRefund(refundDeps(t.app), `api_${key}`, { requestedBy: 'test' });
  if (r.status !== 'created') throw new Error(`refund of ${key}: ${JSON.stringify(r)}`);
  return r.intent;
}

/** The intent was verified after a refusal of its first submission, and never adopted failed. */
async function verifiedNotAdopted(key: string): Promise<void> {
  const to = (await t.app.store.history(key)).map((h) => h.to);
  expect(to, key).toContain('unknown');
  expect(to, key).not.toContain('failed');
}

/** A fresh data loss: every key of the deployment gone, recorded by the platform watch's check. */
async function loseData(): Promise<void> {
  await cleanupPrefix(t.app.redis, t.prefix);
  const seen = await t.app.epoch.check(Date.now());
  expect(seen.verdict).toBe('detected');
  expect(t.app.epoch.isLost()).toBe(true);
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
    await loseData();

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

  it('marks batch rows (ingest, retry of failed rows) and refunds created while the loss is unacknowledged', async () => {
    // Before the loss: the batch paid `ok` and `no` was declined; a charge was refunded in full.
    await postBatch('dl-batch');
    expect((await final('bat_dl-batch_ok')).state).toBe('succeeded');
    expect((await final('bat_dl-batch_no')).state).toBe('failed');
    await post('dl_refund');
    expect((await final('api_dl_refund')).state).toBe('succeeded');
    await refund('dl_refund');
    expect((await final('rf1_api_dl_refund')).state).toBe('succeeded');

    await loseData();

    // The same file again (same id, same row references): its rows are marked, and the refusal of
    // the duplicate `ok` in no words is verified: it ends as Sayswitch holds it, paid once.
    await postBatch('dl-batch');
    for (const key of ['bat_dl-batch_ok', 'bat_dl-batch_no']) {
      expect((await t.app.store.get(key))?.afterDataLoss, key).toBeDefined();
    }
    const ok = await final('bat_dl-batch_ok');
    expect(ok).toMatchObject({ state: 'succeeded', reference: 'bat_dl-batch_ok_1' });
    await verifiedNotAdopted('bat_dl-batch_ok');
    expect(sandbox.ledger().activity['bat_dl-batch_ok_1']).toMatchObject({
      submissions: 2,
      duplicates: 1,
      moves: 1,
    });
    // The declined row is failed by the gateway's own word (its lookup), not by the refusal.
    const no = await final('bat_dl-batch_no');
    expect(no).toMatchObject({ state: 'failed', reason: 'declined' });

    // "Retry failed rows" takes only the row the gateway failed: nothing that moved is paid again.
    const retry = await retryFailedBatch(t.app, 'dl-batch', 'test');
    expect(retry).toMatchObject({ status: 'created', rows: 1 });
    const retried = await t.app.store.get('bat_dl-batch-r1_no');
    expect(retried?.afterDataLoss).toBeDefined();
    expect(await t.app.store.get('bat_dl-batch-r1_ok')).toBeUndefined();
    expect((await final('bat_dl-batch-r1_no')).state).toBe('failed');
    expect(sandbox.ledger().activity['bat_dl-batch-r1_ok_1']).toBeUndefined();

    // The refunded charge re-posted, then its refund asked again: the refund is marked, and
    // Sayswitch's refusal (the transaction is fully refunded) is verified: the refund it holds is
    // found as ours. Unmarked it would end failed, its amount refundable again.
    await post('dl_refund');
    expect((await final('api_dl_refund')).state).toBe('succeeded');
    const again = await refund('dl_refund');
    expect(again.key).toBe('rf1_api_dl_refund');
    expect(again.afterDataLoss).toBeDefined();
    expect((await final('rf1_api_dl_refund')).state).toBe('succeeded');
    await verifiedNotAdopted('rf1_api_dl_refund');
    const refunds = Object.values(sandbox.ledger().refunds).filter(
      (r) => r.transactionReference === 'api_dl_refund_1',
    );
    expect(refunds).toHaveLength(1);

    expect(await t.app.epoch.acknowledge(Date.now())).toBe(true);
  });
});
