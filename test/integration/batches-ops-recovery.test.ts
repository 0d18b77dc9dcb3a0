/**
 * Batch operations that stop halfway or meet a batch that is not theirs (docs/batches.md "Cancel",
 * "Retry failed rows"), against real Redis, the sandbox, workers, the tracker and the reconciler:
 *
 * - a cancel of a held batch interrupted between turning its rows into intents and failing them:
 *   the reconcile sweep finds the rows `queued` without a job and, instead of enqueueing them (an
 *   unapproved payout paid), resumes the cancel; interrupted before any row became an intent, the
 *   sweep finds the batch canceled and still awaiting approval, and resumes the cancel too;
 * - a cancel whose page of transitions fails partway counts every row it failed;
 * - retry-failed finds a batch named `<id>-r1` that is not the retry of `<id>`: a conflict.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepDeps } from '../../src/app/composition.ts';
import { submitBatch } from '../../src/batches/ingest.ts';
import { approveBatch, cancelBatch } from '../../src/batches/operations.ts';
import { batchStatus } from '../../src/batches/status.ts';
import type { IntentStore } from '../../src/kernel/ports.ts';
import { runSweep } from '../../src/payments/sweep.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { waitBatchCompleted } from '../support/batch-http.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration';

function payouts(tag: string, amounts: readonly string[]): string {
  const lines = amounts.map(
    (amount, i) => `${tag}-${i + 1},0123456789,058,GTBank,Ada Obi,${amount},NGN,pay ${tag}`,
  );
  return `${[HEADER, ...lines].join('\n')}\n`;
}

/** The intent store with `transition` replaced (the other methods are the store's own). */
function withTransition(store: IntentStore, transition: IntentStore['transition']): IntentStore {
  const wrapped = Object.create(store) as IntentStore;
  wrapped.transition = transition;
  return wrapped;
}

/** Sandbox activity under any reference of batch `id`. */
function activityOf(sandbox: Sandbox, id: string): string[] {
  return Object.keys(sandbox.ledger().activity).filter((ref) => ref.startsWith(`bat_${id}_`));
}

describe('a held batch whose cancel was interrupted', () => {
  let sandbox: Sandbox;
  let t: TestApp;
  // The reconciler's clock, moved past ORPHAN_AFTER when the test says so.
  let skewMs = 0;
  beforeAll(async () => {
    sandbox = await startTestSandbox({ settleMs: 50 });
    t = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['worker', 'reconciler'],
      // No scheduled sweep (once a year): the tests run theirs. The every-minute one, on the clock
      // the tests move past ORPHAN_AFTER, could resume the cancel between the move and the
      // test's own sweep, whose count then read 0 (a minute boundary on a slow machine).
      env: { BATCH_APPROVAL: 'payouts', RECONCILE_CRON: '0 0 1 1 *' },
      clock: { now: () => Date.now() + skewMs },
    });
  });
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });

  it('is canceled by the sweep, not paid: rows failed as canceled, the batch completes once', async () => {
    const id = 'held-cx';
    const submitted = await submitBatch(t.app, {
      input: payouts('hcx', ['100.00', '200.00', '300.00']),
      type: 'payout',
      id,
      submittedBy: 'cli:alice',
    });
    expect(submitted.batch?.state).toBe('awaiting_approval');

    // The process dies once the held rows are intents, before the first is failed.
    const dying = withTransition(t.app.store, () =>
      Promise.reject(new Error('process killed (simulated)')),
    );
    await expect(cancelBatch({ ...t.app, store: dying }, id, 'cli:bob')).rejects.toThrow(
      'process killed',
    );
    const keys = await t.app.store.batchKeys(id, 0, 10);
    expect(keys).toHaveLength(3);
    for (const key of keys) expect((await t.app.store.get(key))?.state).toBe('queued');
    expect(await approveBatch(t.app, id, 'cli:carol')).toMatchObject({
      ok: false,
      why: 'canceled',
    });

    // ORPHAN_AFTER later, the reconciler's scheduled sweep job runs (the production wiring).
    skewMs = t.app.config.reconcile.orphanAfterMs + 1_000;
    await t.app.dispatcher.addMany('reconcile.sweep', [{ data: {}, jobId: 'sweep-held-cx' }]);
    const states = await until(
      () => Promise.all(keys.map(async (key) => (await t.app.store.get(key))?.state)),
      {
        done: (s) => s.every((st) => st === 'failed' || st === 'succeeded'),
        what: 'every row of the held batch final',
        timeoutMs: 30_000,
        intervalMs: 50,
      },
    );
    expect(states).toEqual(['failed', 'failed', 'failed']);
    for (const key of keys) {
      expect(await t.app.store.get(key)).toMatchObject({ state: 'failed', reason: 'canceled' });
    }
    expect(activityOf(sandbox, id)).toEqual([]);

    // The batch leaves awaiting_approval as a cancel that had not stopped would have left it.
    const done = await waitBatchCompleted(t, id);
    expect(done).toMatchObject({ canceledBy: 'cli:bob', canceledRows: 3 });
    expect(done.counts.failed).toBe(3);
    expect(done.approvedBy).toBeUndefined();
    const events = await t.app.events.read('-', 100_000);
    expect(
      events.filter((e) => e.type === 'batch.completed' && e.data.batchId === id),
    ).toHaveLength(1);
    expect(activityOf(sandbox, id)).toEqual([]);
  });

  it('is resumed by the sweep when the cancel died before any row became an intent', async () => {
    skewMs = 0;
    const id = 'held-cx-early';
    const submitted = await submitBatch(t.app, {
      input: payouts('hce', ['110.00', '220.00']),
      type: 'payout',
      id,
      submittedBy: 'cli:alice',
    });
    expect(submitted.batch?.state).toBe('awaiting_approval');
    // The cancel's first step, then the process dies: the batch is marked canceled, no row is an
    // intent yet, so no sweep finds an orphan of it.
    await t.app.batches.markCanceled(id, 'cli:bob', t.app.clock.now());
    expect(await t.app.store.batchKeys(id, 0, 10)).toHaveLength(0);

    // Within ORPHAN_AFTER of the cancel the sweep leaves it alone (a cancel may still be running).
    expect(await runSweep(sweepDeps(t.app))).toMatchObject({ cancelsResumed: 0 });
    expect((await t.app.batches.get(id))?.state).toBe('awaiting_approval');

    // ORPHAN_AFTER later, the sweep (the reconciler's deps, as the composition root wires them).
    skewMs = t.app.config.reconcile.orphanAfterMs + 1_000;
    expect(await runSweep(sweepDeps(t.app))).toMatchObject({ cancelsResumed: 1 });
    const done = await waitBatchCompleted(t, id);
    expect(done).toMatchObject({ canceledBy: 'cli:bob', canceledRows: 2 });
    expect(done.counts.failed).toBe(2);
    const keys = await t.app.store.batchKeys(id, 0, 10);
    for (const key of keys) {
      expect(await t.app.store.get(key)).toMatchObject({ state: 'failed', reason: 'canceled' });
    }
    expect(activityOf(sandbox, id)).toEqual([]);
  });
});

describe('a cancel whose page fails partway', () => {
  let sandbox: Sandbox;
  let t: TestApp;
  beforeAll(async () => {
    sandbox = await startTestSandbox({ settleMs: 50 });
    // No worker: the rows stay queued.
    t = await startTestApp({ sandboxUrl: sandbox.url, roles: [] });
  });
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });

  it('counts every row it failed, and a second cancel counts the rest', async () => {
    const id = 'cancel-partway';
    const r = await submitBatch(t.app, {
      input: payouts('cp', ['1.00', '2.00', '3.00', '4.00']),
      type: 'payout',
      id,
    });
    expect(r.status).toBe('created');
    const keys = await t.app.store.batchKeys(id, 0, 10);
    const broken = keys[2];
    // One transition of the page fails (a Redis call lost); the others land.
    const flaky = withTransition(t.app.store, (key, ...rest) =>
      key === broken
        ? Promise.reject(new Error('ECONNRESET (simulated)'))
        : t.app.store.transition(key, ...rest),
    );
    await expect(cancelBatch({ ...t.app, store: flaky }, id, 'API_TOKEN')).rejects.toThrow(
      'ECONNRESET',
    );
    const failed = async () => {
      let n = 0;
      for (const key of keys) if ((await t.app.store.get(key))?.reason === 'canceled') n++;
      return n;
    };
    expect(await failed()).toBe(3);
    expect((await batchStatus(t.app, id))?.canceledRows).toBe(3);

    const again = await cancelBatch(t.app, id, 'API_TOKEN');
    expect(again).toMatchObject({ status: 'canceled', canceledNow: 1 });
    expect(await failed()).toBe(4);
    expect((await batchStatus(t.app, id))?.canceledRows).toBe(4);
  });

  it('never fails a queued row whose reference may already be at the gateway', async () => {
    const id = 'cancel-resent';
    const r = await submitBatch(t.app, {
      input: payouts('cr', ['1.00', '2.00']),
      type: 'payout',
      id,
    });
    expect(r.status).toBe('created');
    const [resent, fresh] = await t.app.store.batchKeys(id, 0, 10);
    // Claimed, sent, no answer; verify proved it unsent after the grace: re-queued with the same
    // reference (payments/reconcile.ts). The first request may still land.
    const { store } = t.app;
    const now = Date.now();
    const claim = await store.transition(resent!, 'submitting', now, {
      expectAttempt: 1,
      patch: { leaseUntil: now + 30_000, sentAt: now },
    });
    expect(claim.ok).toBe(true);
    expect((await store.transition(resent!, 'unknown', now, { expectAttempt: 1 })).ok).toBe(true);
    const requeued = await store.transition(resent!, 'queued', now, {
      expectAttempt: 1,
      unsentResubmit: true,
    });
    expect(requeued.ok && requeued.intent.unsentResubmits).toBe(1);

    const canceled = await cancelBatch(t.app, id, 'API_TOKEN');
    expect(canceled).toMatchObject({ status: 'canceled', canceledNow: 1 });
    expect((await store.get(fresh!))?.state).toBe('failed');
    // Left to be submitted like any queued row: its outcome is the gateway's to say.
    expect(await store.get(resent!)).toMatchObject({ state: 'queued', unsentResubmits: 1 });
    expect((await store.history(resent!)).map((h) => h.to)).not.toContain('failed');
  });
});

describe('retry-failed when <id>-r1 is another batch', () => {
  let sandbox: Sandbox;
  let t: TestApp;
  beforeAll(async () => {
    sandbox = await startTestSandbox({ settleMs: 50 });
    t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['worker', 'api'] });
  });
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });

  it('answers 409 batch_id_conflict and creates nothing', async () => {
    // `.51` declines: one failed row to retry.
    const csv = `reference,email,amount,currency,card_token\nrt-1,a@example.com,100.00,NGN,tok_1\nrt-2,a@example.com,101.51,NGN,tok_2\n`;
    await submitBatch(t.app, { input: csv, type: 'charge', id: 'rtc' });
    const first = await waitBatchCompleted(t, 'rtc');
    expect(first.counts).toMatchObject({ succeeded: 1, failed: 1 });
    // An unrelated batch that someone named rtc-r1 (a valid id).
    const other = await submitBatch(t.app, {
      input: payouts('oth', ['5.00']),
      type: 'payout',
      id: 'rtc-r1',
    });
    expect(other.status).toBe('created');

    for (let n = 0; n < 2; n++) {
      const res = await fetch(`${t.url}/batches/rtc/retry-failed`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_API_TOKEN}` },
      });
      const json = (await res.json()) as { error?: { code: string } };
      expect(res.status, JSON.stringify(json)).toBe(409);
      expect(json.error?.code).toBe('batch_id_conflict');
    }
    expect((await batchStatus(t.app, 'rtc'))?.retriedBy).toBeUndefined();
    expect((await batchStatus(t.app, 'rtc-r1'))?.retryOf).toBeUndefined();
    expect(await t.app.store.get('bat_rtc-r1_rt-2')).toBeUndefined();
  });
});
