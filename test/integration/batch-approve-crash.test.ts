/**
 * An approval whose release stops partway (docs/batches.md "Approval"). An approval stamps
 * `approvedAt`, then turns the held rows into intents and enqueues them a page (500 rows) at a
 * time, then lets the batch leave `awaiting_approval`. A process that died after the first page
 * used to leave the later held rows unpaid for good: they are no intent, so the sweep's orphan
 * repair never finds them, and the batch sat `awaiting_approval` showing its approver until
 * someone approved it again. Now the reconcile sweep finishes the release once the approval is
 * ORPHAN_AFTER old, as it resumes an interrupted cancel; every row gets exactly one submit job,
 * also when the resume races a release still running, and a batch canceled after its approval is
 * never released. Real Redis by prefix; no worker, so the submit jobs stay in the queue to count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepDeps } from '../../src/app/composition.ts';
import { submitBatch } from '../../src/batches/ingest.ts';
import { approveBatch, cancelBatch, resumeApprovedReleases } from '../../src/batches/operations.ts';
import type { Dispatcher } from '../../src/infra/queues/dispatcher.ts';
import type { IntentStore } from '../../src/kernel/ports.ts';
import { runSweep } from '../../src/payments/sweep.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/** More than one release page (operations.ts PAGE = 500): the second page is still held. */
const ROWS = 620;
const FIRST_PAGE = 500;

const HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration';

function payouts(tag: string): string {
  const lines = Array.from(
    { length: ROWS },
    (_, i) => `${tag}-${i + 1},0123456789,058,GTBank,Ada Obi,${i + 1}.00,NGN,pay ${tag}`,
  );
  return `${[HEADER, ...lines].join('\n')}\n`;
}

let t: TestApp;
// The sweep's clock, moved past ORPHAN_AFTER when a test says so.
let skewMs = 0;

/** An app of the describe's own (so a sweep meets only its rows), opened before its tests. */
function ownApp(): void {
  beforeAll(async () => {
    skewMs = 0;
    // No roles: the submit jobs stay in the payouts queue for the tests to count.
    t = await startTestApp({
      sandboxUrl: 'http://127.0.0.1:9',
      roles: [],
      env: { BATCH_APPROVAL: 'payouts' },
      clock: { now: () => Date.now() + skewMs },
    });
  });
  afterAll(async () => {
    await t?.close();
  });
}

/** The app's dispatcher, with `submitMany` replaced (the other methods are its own). */
function withSubmitMany(
  real: Dispatcher,
  submitMany: (...a: Parameters<Dispatcher['submitMany']>) => Promise<void>,
): Dispatcher {
  return new Proxy(real, {
    get(target, p, r) {
      if (p === 'submitMany') return submitMany;
      const v: unknown = Reflect.get(target, p, r);
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Enqueues the first page, then the process "dies". */
function dyingAfterFirstPage(real: Dispatcher): Dispatcher {
  let calls = 0;
  return withSubmitMany(real, async (intents) => {
    if (calls++ > 0) throw new Error('process killed after the first page (simulated)');
    await real.submitMany(intents);
    throw new Error('process killed after the first page (simulated)');
  });
}

/** The intent store with `transition` replaced (the other methods are the store's own). */
function withTransition(store: IntentStore, transition: IntentStore['transition']): IntentStore {
  const wrapped = Object.create(store) as IntentStore;
  wrapped.transition = transition;
  return wrapped;
}

/** The submit jobs of batch `id`'s rows, by intent key (a key twice is a second job). */
async function jobKeys(id: string): Promise<string[]> {
  const jobs = await t.app.dispatcher
    .queue('payouts')
    .getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed']);
  return jobs
    .map((job) => (job.data as { key: string }).key)
    .filter((key) => key.startsWith(`bat_${id}_`));
}

async function submitHeld(id: string): Promise<void> {
  const submitted = await submitBatch(t.app, {
    input: payouts(id),
    type: 'payout',
    id,
    submittedBy: 'cli:alice',
  });
  expect(submitted.batch?.state).toBe('awaiting_approval');
}

/** Approves batch `id` as cli:bob in a process that dies after enqueueing the first page. */
async function approveAndDie(id: string): Promise<void> {
  const dying = { ...t.app, dispatcher: dyingAfterFirstPage(t.app.dispatcher) };
  await expect(approveBatch(dying, id, 'cli:bob')).rejects.toThrow('process killed');
  expect(await t.app.batches.get(id)).toMatchObject({
    state: 'awaiting_approval',
    approvedBy: 'cli:bob',
  });
  expect(await t.app.store.batchKeys(id, 0, ROWS)).toHaveLength(FIRST_PAGE);
  expect(await jobKeys(id)).toHaveLength(FIRST_PAGE);
}

/**
 * Cancels batch `id` as cli:dave in a process that dies once every held row is an intent, before
 * the first is failed: the rows the release had not enqueued are queued intents without a job.
 */
async function cancelAndDie(id: string): Promise<void> {
  const dying = withTransition(t.app.store, () =>
    Promise.reject(new Error('process killed (simulated)')),
  );
  await expect(cancelBatch({ ...t.app, store: dying }, id, 'cli:dave')).rejects.toThrow(
    'process killed',
  );
}

describe('an approval whose release stopped after the first page', () => {
  ownApp();

  it('is finished by one sweep once ORPHAN_AFTER old: every row gets exactly one job', async () => {
    skewMs = 0;
    const id = 'appr-crash';
    await submitHeld(id);
    await approveAndDie(id);

    // Within ORPHAN_AFTER of the approval the sweep leaves it alone (it may still be releasing).
    expect(await runSweep(sweepDeps(t.app))).toMatchObject({ releasesResumed: 0 });
    expect((await t.app.batches.get(id))?.state).toBe('awaiting_approval');
    expect(await jobKeys(id)).toHaveLength(FIRST_PAGE);

    // ORPHAN_AFTER later, one sweep (the reconciler's deps, as the composition root wires them).
    skewMs = t.app.config.reconcile.orphanAfterMs + 1_000;
    expect(await runSweep(sweepDeps(t.app))).toMatchObject({
      releasesResumed: 1,
      cancelsResumed: 0,
    });
    const batch = await t.app.batches.get(id);
    expect(batch).toMatchObject({ state: 'queued', approvedBy: 'cli:bob' });
    expect(batch?.canceledAt).toBeUndefined();
    const keys = await t.app.store.batchKeys(id, 0, ROWS + 1);
    expect(keys).toHaveLength(ROWS);
    for (const key of keys) expect((await t.app.store.get(key))?.state).toBe('queued');
    const jobs = await jobKeys(id);
    expect(jobs).toHaveLength(ROWS);
    expect(new Set(jobs)).toEqual(new Set(keys));

    // Nothing more for a later sweep, nor for an approval repeated after it.
    expect(await runSweep(sweepDeps(t.app))).toMatchObject({ releasesResumed: 0 });
    expect(await approveBatch(t.app, id, 'cli:carol')).toMatchObject({
      status: 'already_approved',
    });
    expect(await jobKeys(id)).toHaveLength(ROWS);
  });
});

describe('a resume racing an approval still releasing', () => {
  ownApp();

  it('adds no second job', async () => {
    const id = 'appr-race';
    await submitHeld(id);
    // The approver's release is still running (between its first page's intents and their jobs)
    // when a resume releases the whole batch: both end, and every row has one job.
    let resumed: number | undefined;
    const slow = withSubmitMany(t.app.dispatcher, async (intents) => {
      resumed ??= await resumeApprovedReleases(t.app, 0);
      await t.app.dispatcher.submitMany(intents);
    });
    expect(await approveBatch({ ...t.app, dispatcher: slow }, id, 'cli:bob')).toMatchObject({
      status: 'approved',
    });
    expect(resumed).toBe(1);
    expect((await t.app.batches.get(id))?.state).toBe('queued');
    const keys = await t.app.store.batchKeys(id, 0, ROWS + 1);
    expect(keys).toHaveLength(ROWS);
    const jobs = await jobKeys(id);
    expect(jobs).toHaveLength(ROWS);
    expect(new Set(jobs)).toEqual(new Set(keys));
  });
});

describe('an approval whose release stopped, then a cancel that stopped too', () => {
  ownApp();

  it('is canceled by the sweep, never released', async () => {
    const id = 'appr-cx';
    await submitHeld(id);
    await approveAndDie(id);
    await cancelAndDie(id);
    expect(await t.app.store.batchKeys(id, 0, ROWS + 1)).toHaveLength(ROWS);
    expect((await t.app.batches.get(id))?.state).toBe('awaiting_approval');

    skewMs = t.app.config.reconcile.orphanAfterMs + 1_000;
    const swept = await runSweep(sweepDeps(t.app));
    // The orphans of the second page are the cancel's: it is resumed, none is enqueued.
    expect(swept).toMatchObject({ requeued: 0, claimed: 1, releasesResumed: 0 });
    expect(await jobKeys(id)).toHaveLength(FIRST_PAGE);
    const keys = await t.app.store.batchKeys(id, 0, ROWS + 1);
    for (const key of keys) {
      expect(await t.app.store.get(key)).toMatchObject({ state: 'failed', reason: 'canceled' });
    }
    expect((await t.app.batches.get(id))?.state).not.toBe('awaiting_approval');
    expect(await runSweep(sweepDeps(t.app))).toMatchObject({
      requeued: 0,
      releasesResumed: 0,
      cancelsResumed: 0,
    });
  });

  it('approved again afterwards: the cancel is finished, never the release', async () => {
    const id = 'appr-cx2';
    await submitHeld(id);
    await approveAndDie(id);
    await cancelAndDie(id);
    // The approver tries again before any sweep: its approval is already recorded.
    skewMs = 0;
    await expect(approveBatch(t.app, id, 'cli:bob')).resolves.toMatchObject({
      status: 'already_approved',
    });
    skewMs = t.app.config.reconcile.orphanAfterMs + 1_000;
    expect(await runSweep(sweepDeps(t.app))).toMatchObject({ requeued: 0, releasesResumed: 0 });
    expect(await jobKeys(id)).toHaveLength(FIRST_PAGE);
    for (const key of await t.app.store.batchKeys(id, 0, ROWS + 1)) {
      expect(await t.app.store.get(key)).toMatchObject({ state: 'failed', reason: 'canceled' });
    }
    expect((await t.app.batches.get(id))?.state).not.toBe('awaiting_approval');
  });
});
