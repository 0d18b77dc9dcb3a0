/**
 * Batch operations (issue 14 item 4): cancel, retry of the failed rows as a linked batch, and
 * approval by a second identity (BATCH_APPROVAL) — against real Redis, the sandbox, workers and
 * the tracker. Money is judged by the sandbox ledger: a canceled row never reaches the gateway, a
 * retried row is submitted once under its new reference, a held batch sends nothing until it is
 * approved.
 */
import { userInfo } from 'node:os';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { batchStatus } from '../../src/batches/status.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { runBilling } from '../support/child.ts';
import { batchCliEnv, uploadCsv, waitBatchCompleted } from '../support/batch-http.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration';

/** A payout file: one row per amount (`1500.51` declines in the sandbox, `.52` is pending first). */
function payouts(tag: string, amounts: readonly string[]): string {
  const lines = amounts.map(
    (amount, i) => `${tag}-${i + 1},0123456789,058,GTBank,Ada Obi,${amount},NGN,pay ${tag}`,
  );
  return `${[HEADER, ...lines].join('\n')}\n`;
}

interface Harness {
  sandbox: Sandbox;
  t: TestApp;
}

async function open(env: Record<string, string> = {}): Promise<Harness> {
  const sandbox = await startTestSandbox({ settleMs: 300 });
  const t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['worker', 'reconciler', 'api'],
    env,
  });
  return { sandbox, t };
}

async function close(h: Harness | undefined): Promise<void> {
  await h?.t.close();
  await h?.sandbox.close();
}

async function post(h: Harness, path: string) {
  const res = await fetch(`${h.t.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_API_TOKEN}` },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** The ledger's activity of one row's first attempt reference. */
function activity(h: Harness, batchId: string, ref: string) {
  return h.sandbox.ledger().activity[`bat_${batchId}_${ref}_1`];
}

async function intentOf(h: Harness, batchId: string, ref: string) {
  return h.t.app.store.get(`bat_${batchId}_${ref}`);
}

describe('cancel', () => {
  let h: Harness;
  // A slow outbound rate so that rows wait in `queued` while the first ones are in flight.
  beforeAll(async () => {
    h = await open({ SAYSWITCH_RATE_LIMIT_PER_SEC: '4', WORKER_CONCURRENCY: '2' });
  });
  afterAll(() => close(h));

  it('mid-run: rows in flight finish, queued rows fail as canceled and never reach the gateway', async () => {
    const amounts = Array.from({ length: 10 }, (_, i) => `${100 + i}.52`);
    const r = await submitBatch(h.t.app, {
      input: payouts('cx', amounts),
      type: 'payout',
      id: 'ops-cancel',
    });
    expect(r.status).toBe('created');
    // Wait until at least one row was sent (pending at the gateway), then cancel over HTTP.
    await until(() => batchStatus(h.t.app, 'ops-cancel'), {
      done: (s) => (s?.counts.pending ?? 0) + (s?.counts.succeeded ?? 0) > 0,
      what: 'a row in flight',
      timeoutMs: 20_000,
      intervalMs: 20,
    });
    const res = await post(h, '/batches/ops-cancel/cancel');
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    const canceledNow = res.json.canceledNow as number;
    expect(canceledNow).toBeGreaterThan(0);

    const done = await waitBatchCompleted(h.t, 'ops-cancel');
    expect(done.canceledRows).toBe(canceledNow);
    expect(done.canceledBy).toBe('API_TOKEN');
    expect(done.counts.succeeded + done.counts.failed).toBe(10);
    expect(done.counts.failed).toBe(canceledNow);
    for (let i = 1; i <= 10; i++) {
      const intent = await intentOf(h, 'ops-cancel', `cx-${i}`);
      const seen = activity(h, 'ops-cancel', `cx-${i}`);
      if (intent?.state === 'failed') {
        expect(intent.reason).toBe('canceled');
        // Never submitted: no activity at all under its reference.
        expect(seen?.submissions ?? 0, `cx-${i}`).toBe(0);
        expect(seen?.moves ?? 0).toBe(0);
      } else {
        expect(intent?.state, `cx-${i}`).toBe('succeeded');
        expect(seen?.moves).toBe(1);
      }
    }

    // Idempotent: a second cancel (CLI) changes nothing.
    const again = await runBilling(
      ['batch', 'cancel', 'ops-cancel', '--json'],
      await batchCliEnv(h.t, h.sandbox),
    );
    expect(again.code, again.output).toBe(0);
    expect(again.output).toContain('"canceledNow":0');
    expect((await batchStatus(h.t.app, 'ops-cancel'))?.canceledRows).toBe(canceledNow);
    // An unknown batch is 404.
    expect((await post(h, '/batches/no-such-batch/cancel')).status).toBe(404);
  });
});

describe('retry-failed and approval', () => {
  let h: Harness;
  let dir: string;
  beforeAll(async () => {
    h = await open({ BATCH_APPROVAL: 'payouts' });
    dir = await mkdtemp(join(tmpdir(), 'batches-ops-'));
  });
  afterAll(async () => {
    await close(h);
    await rm(dir, { recursive: true, force: true });
  });

  it('approval: the submitter is refused, another identity approves, then the batch runs', async () => {
    const up = await uploadCsv(
      h.t,
      payouts('ap', ['100.00', '200.00', '300.00']),
      'type=payout&id=ops-approve',
    );
    expect(up.status, JSON.stringify(up.json)).toBe(201);
    expect(up.json.state).toBe('awaiting_approval');
    // Recorded, not enqueued: no intent, nothing at the gateway.
    expect(await h.t.app.store.batchKeys('ops-approve', 0, 10)).toEqual([]);
    expect(activity(h, 'ops-approve', 'ap-1')).toBeUndefined();

    // Approval by the same token is refused and changes nothing.
    const same = await post(h, '/batches/ops-approve/approve');
    expect(same.status).toBe(403);
    expect((same.json.error as { code: string }).code).toBe('same_approver');
    const held = await batchStatus(h.t.app, 'ops-approve');
    expect(held).toMatchObject({ state: 'awaiting_approval', submittedBy: 'API_TOKEN' });
    expect(held?.approvedBy).toBeUndefined();
    expect(await h.t.app.store.batchKeys('ops-approve', 0, 10)).toEqual([]);

    // Another identity (a CLI user) approves: the rows are enqueued and paid once each.
    const ok = await runBilling(
      ['batch', 'approve', 'ops-approve'],
      await batchCliEnv(h.t, h.sandbox),
    );
    expect(ok.code, ok.output).toBe(0);
    const done = await waitBatchCompleted(h.t, 'ops-approve');
    expect(done).toMatchObject({ approvedBy: `cli:${userInfo().username}` });
    expect(done.counts.succeeded).toBe(3);
    for (const ref of ['ap-1', 'ap-2', 'ap-3'])
      expect(activity(h, 'ops-approve', ref)?.moves).toBe(1);
    // Approving again is a no-op.
    const twice = await post(h, '/batches/ops-approve/approve');
    expect(twice.status).toBe(200);
    expect(twice.json.status).toBe('already_approved');
    // A cancel after it completed (a stale page, a late script) is refused and marks nothing.
    const late = await post(h, '/batches/ops-approve/cancel');
    expect(late.status).toBe(409);
    expect((late.json.error as { code: string }).code).toBe('batch_completed');
    const lateCli = await runBilling(
      ['batch', 'cancel', 'ops-approve', '--json'],
      await batchCliEnv(h.t, h.sandbox),
    );
    expect(lateCli.code, lateCli.output).toBe(1);
    expect(lateCli.output).toContain('"code":"batch_completed"');
    const after = await batchStatus(h.t.app, 'ops-approve');
    expect(after?.canceledAt).toBeUndefined();
    expect(after?.canceledBy).toBeUndefined();
  });

  it('approval over the CLI by its own submitter is refused (exit 1, same_approver); HTTP approves', async () => {
    const file = join(dir, 'cli.csv');
    await writeFile(file, payouts('apc', ['150.00']));
    const env = await batchCliEnv(h.t, h.sandbox, { BATCH_APPROVAL: 'payouts' });
    const sub = await runBilling(
      ['batch', 'submit', file, '--type', 'payout', '--id', 'ops-cli-ap'],
      env,
    );
    expect(sub.code, sub.output).toBe(0);
    expect(sub.output).toContain('awaits approval');
    const self = await runBilling(['batch', 'approve', 'ops-cli-ap', '--json'], env);
    expect(self.code, self.output).toBe(1);
    expect(self.output).toContain('"code":"same_approver"');
    expect((await batchStatus(h.t.app, 'ops-cli-ap'))?.state).toBe('awaiting_approval');
    const other = await post(h, '/batches/ops-cli-ap/approve');
    expect(other.status, JSON.stringify(other.json)).toBe(200);
    await waitBatchCompleted(h.t, 'ops-cli-ap');
    expect(activity(h, 'ops-cli-ap', 'apc-1')?.moves).toBe(1);
  });

  it('a held batch canceled before approval: every row fails as canceled, approval is refused', async () => {
    const up = await uploadCsv(
      h.t,
      payouts('hc', ['110.00', '120.00']),
      'type=payout&id=ops-held-cancel',
    );
    expect(up.status).toBe(201);
    const c = await post(h, '/batches/ops-held-cancel/cancel');
    expect(c.status).toBe(200);
    expect(c.json.canceledNow).toBe(2);
    const approve = await runBilling(
      ['batch', 'approve', 'ops-held-cancel', '--json'],
      await batchCliEnv(h.t, h.sandbox),
    );
    expect(approve.code).toBe(1);
    expect(approve.output).toContain('"code":"batch_canceled"');
    const done = await waitBatchCompleted(h.t, 'ops-held-cancel');
    expect(done.counts.failed).toBe(2);
    for (const ref of ['hc-1', 'hc-2']) expect(activity(h, 'ops-held-cancel', ref)).toBeUndefined();
  });

  it('retry-failed: only the failed rows, once, under new references; idempotent', async () => {
    // Charges are not held under BATCH_APPROVAL=payouts. `.51` declines, `.53` fails after pending.
    const CHARGE_HEADER = 'reference,email,amount,currency,card_token';
    const amounts = ['100.00', '101.51', '102.53', '103.00'];
    const csv = `${[CHARGE_HEADER, ...amounts.map((a, i) => `rt-${i + 1},a@example.com,${a},NGN,tok_${i}`)].join('\n')}\n`;
    const r = await submitBatch(h.t.app, { input: csv, type: 'charge', id: 'ops-retry' });
    expect(r.status).toBe('created');
    expect(r.batch?.state).toBe('queued');
    const first = await waitBatchCompleted(h.t, 'ops-retry');
    expect(first.counts).toMatchObject({ succeeded: 2, failed: 2 });

    const res = await post(h, '/batches/ops-retry/retry-failed');
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    expect(res.json).toMatchObject({ batchId: 'ops-retry-r1', retryOf: 'ops-retry', rows: 2 });
    const retry = await waitBatchCompleted(h.t, 'ops-retry-r1');
    expect(retry).toMatchObject({ valid: 2, retryOf: 'ops-retry', submittedBy: 'API_TOKEN' });
    expect((await batchStatus(h.t.app, 'ops-retry'))?.retriedBy).toBe('ops-retry-r1');
    // The failed rows were submitted once each under the retry's references (the sandbox declines
    // these amounts again); the rows that succeeded were not submitted again.
    for (const ref of ['rt-2', 'rt-3']) {
      expect(activity(h, 'ops-retry-r1', ref)?.submissions, ref).toBe(1);
      expect((await intentOf(h, 'ops-retry-r1', ref))?.line).toBe(Number(ref.slice(3)) + 1);
    }
    for (const ref of ['rt-1', 'rt-4']) {
      expect(activity(h, 'ops-retry-r1', ref)).toBeUndefined();
      expect(activity(h, 'ops-retry', ref)?.moves).toBe(1);
    }
    // Repeating the call (CLI) returns the same retry and submits nothing more.
    const again = await runBilling(
      ['batch', 'retry-failed', 'ops-retry', '--json'],
      await batchCliEnv(h.t, h.sandbox),
    );
    expect(again.code, again.output).toBe(0);
    expect(again.output).toContain('"status":"existing"');
    expect(again.output).toContain('"batchId":"ops-retry-r1"');
    for (const ref of ['rt-2', 'rt-3'])
      expect(activity(h, 'ops-retry-r1', ref)?.submissions).toBe(1);

    // A batch with rows in flight is refused and nothing is created.
    const busy = await submitBatch(h.t.app, {
      input: payouts('busy', ['100.00']),
      type: 'payout',
      id: 'ops-busy',
    });
    expect(busy.batch?.state).toBe('awaiting_approval');
    const refused = await post(h, '/batches/ops-busy/retry-failed');
    expect(refused.status).toBe(409);
    expect(await h.t.app.batches.get('ops-busy-r1')).toBeUndefined();
  });
});
