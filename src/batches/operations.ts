/**
 * Operations on a submitted batch (docs/batches.md "Cancel", "Retry failed rows", "Approval"):
 *
 * - {@link cancelBatch}: every row whose intent is still `queued` and never sent becomes `failed`
 *   with reason `canceled`, through the intent store's ordinary transition (with `expectAttempt`
 *   and `onlyFrom: ['queued']`, so a row claimed since the read is refused, and `neverSent`, so a
 *   row re-queued after a verify proved its reference unsent, or created after a data loss, is
 *   refused too: an earlier request of its reference may still land; it publishes
 *   `payment.failed`, which the tracker counts). Rows in flight or
 *   final finish as they would have. The submit job of a canceled row finds it not `queued` and
 *   skips (payments/submit.ts), so no money moves for it. Idempotent; each row is counted in
 *   `canceledRows` as it is failed. A held batch's cancel that stopped partway is resumed by the
 *   reconcile sweep ({@link resumeInterruptedCancel}) instead of its rows being enqueued.
 * - {@link approveBatch}: a batch held by BATCH_APPROVAL is released (its recorded rows become
 *   intents and are enqueued) once someone other than its submitter approves it. A release that
 *   stopped partway is finished by the reconcile sweep ({@link resumeApprovedReleases}).
 * - {@link retryFailedBatch}: the rows whose intents ended `failed` by the gateway's word (not
 *   canceled, not forced by an operator) become a new batch `<id>-r<n>` linked to the first, with
 *   new intent keys and so new references. Never a row that may have moved money: `reversed`,
 *   `needs_review` and `unknown` rows are not failed. A batch under `<id>-r<n>` that is not the
 *   retry of `<id>` is a conflict.
 */
import { createHash, randomBytes } from 'node:crypto';
import { UnreadableRecordError } from '../kernel/errors.ts';
import { BATCH_ID_MAX, batchIntentKey, isNewBatchId } from '../kernel/ids.ts';
import { OPERATOR_FORCED, isSettled, intentStateSchema } from '../kernel/intent.ts';
import type { AmountMinor, Currency } from '../kernel/money.ts';
import type { BatchIntentRow } from '../kernel/ports.ts';
import { needsApproval, type BatchApproval } from './approval.ts';
import type { BatchDeps } from './ingest.ts';
import { createOwnIntents } from './own-intents.ts';
import type { ApproveResult, BatchInit, BatchRecord, CurrencyTotal } from './ports.ts';

/** Rows read (and transitioned, created or enqueued) per page. */
const PAGE = 500;

/** The failure reason a cancel writes (kernel/intent.ts FAILURE_REASONS). */
export const CANCELED = 'canceled';

/** Outcome of {@link cancelBatch}. */
export type CancelResult =
  | { status: 'canceled'; batch: BatchRecord; canceledNow: number }
  | { status: 'not_found' }
  | { status: 'ingesting' }
  /** Completed, never canceled: every row is final, nothing changed (a stale page or script). */
  | { status: 'completed'; batch: BatchRecord };

/** Creates the intents of a held batch's rows a page at a time; enqueues them when asked. */
async function releaseHeld(deps: BatchDeps, batch: BatchRecord, enqueue: boolean): Promise<void> {
  for (let offset = 0; ; offset += PAGE) {
    const rows = await deps.batches.heldRows(batch.id, offset, PAGE);
    if (rows.length === 0) break;
    const { intents } = await createOwnIntents(deps, { batchId: batch.id, type: batch.type, rows });
    if (enqueue) {
      await deps.dispatcher.submitMany(intents.filter((intent) => intent.state === 'queued'));
    }
    if (rows.length < PAGE) break;
  }
}

/**
 * Cancels the rows of batch `id` not yet submitted; `by` is who asked. Refused while the batch is
 * still ingesting (its rows are being created and enqueued: cancel once it is `queued`) and once
 * it has completed (every row is final; the batch is left as it is, not marked canceled).
 */
export async function cancelBatch(deps: BatchDeps, id: string, by: string): Promise<CancelResult> {
  const batch = await deps.batches.markCanceled(id, by, deps.clock.now());
  if (!batch) return { status: 'not_found' };
  if (batch.state === 'ingesting') return { status: 'ingesting' };
  // Every row is final. A batch canceled before it completed answers a repeated cancel as one that
  // canceled nothing more; any other completed batch is left as it is, never marked canceled.
  if (batch.state === 'completed') {
    return batch.canceledAt !== undefined
      ? { status: 'canceled', batch, canceledNow: 0 }
      : { status: 'completed', batch };
  }
  const log = deps.logger.child({ component: 'batch', batchId: id });
  // A held batch's rows become intents first (not enqueued), so that every row is canceled below
  // and a release racing with this cancel finds its intents already failed.
  if (batch.state === 'awaiting_approval') await releaseHeld(deps, batch, false);
  let canceledNow = 0;
  for (let offset = 0; ; offset += PAGE) {
    const keys = await deps.store.batchKeys(id, offset, PAGE);
    if (keys.length === 0) break;
    const fields = await deps.batches.intentFields(keys, ['state', 'attempt', 'line']);
    const settled = await Promise.allSettled(
      keys.map(async (key, i) => {
        const [state, attempt, line] = fields[i] ?? [];
        if (state !== 'queued') return;
        const now = deps.clock.now();
        // A claim that won the race makes this a refusal: that row finishes normally. A claim
        // keeps the attempt, so only `onlyFrom` tells a claimed row from a queued one. A row whose
        // reference may already be at the gateway is refused too (`neverSent`) and goes on.
        const res = await deps.store.transition(key, 'failed', now, {
          expectAttempt: Number(attempt),
          onlyFrom: ['queued'],
          neverSent: true,
          reason: CANCELED,
          patch: { reason: CANCELED, message: `batch canceled by ${by}` },
        });
        if (!res.ok) return;
        // Counted as it happens: a row failed here is no longer `queued`, so no later cancel would
        // count it if this one stopped (another row's transition throwing) before counting. By
        // line: once, even when the Redis client runs the count twice (a resend after a lost reply).
        // Every batch row has its line (CREATE_BATCH_INTENTS writes it).
        if (line) await deps.batches.addCanceledRow(id, Number(line));
        canceledNow++;
      }),
    );
    // Every row of the page was tried (and each success counted) before a failure is reported.
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
    if (keys.length < PAGE) break;
  }
  if (batch.state === 'awaiting_approval') await deps.batches.finishRelease(id, deps.clock.now());
  log.info({ by, canceledNow }, 'batch canceled');
  const after = await deps.batches.get(id);
  return { status: 'canceled', batch: after ?? batch, canceledNow };
}

/**
 * A batch held for approval and canceled before its release: before anyone approved it, or after
 * an approval whose release had not finished (it still awaits approval). Its cancel owns the rows
 * not enqueued yet, so a `queued` intent of it without a live job is one its cancel (or the
 * interrupted release) created and the cancel had not failed yet: never one to send.
 */
function canceledWhileHeld(batch: BatchRecord): boolean {
  return (
    batch.holdForApproval &&
    batch.canceledAt !== undefined &&
    (batch.approvedAt === undefined || batch.state === 'awaiting_approval')
  );
}

/**
 * A batch approved, never canceled, that still awaits approval: its release (the approving call
 * turning the held rows into intents and enqueueing them, then `finishRelease`) has not finished.
 */
function approvedWhileHeld(batch: BatchRecord): boolean {
  return (
    batch.holdForApproval &&
    batch.state === 'awaiting_approval' &&
    batch.approvedAt !== undefined &&
    batch.canceledAt === undefined
  );
}

/**
 * Asked by the reconcile sweep (payments/sweep.ts `SweepDeps.claimBatchOrphan`, wired by the
 * composition root) before it re-enqueues a `queued` intent of batch `batchId` that has no live
 * submit job. When the batch was canceled while held for approval, that intent was left by a
 * cancel that stopped (the process died) between turning the held rows into intents and failing
 * them: the cancel is resumed — idempotent: intents are created once, only `queued` rows are
 * failed, then the batch leaves `awaiting_approval` — and true is returned, so the sweep does not
 * re-enqueue it. False for any other batch (the sweep re-enqueues as for any orphan).
 */
export async function resumeInterruptedCancel(deps: BatchDeps, batchId: string): Promise<boolean> {
  const batch = await deps.batches.get(batchId);
  if (!batch || !canceledWhileHeld(batch)) return false;
  deps.logger.warn(
    { component: 'batch', batchId, canceledBy: batch.canceledBy },
    'a held batch canceled before its release still had queued rows (its cancel was interrupted); resuming the cancel',
  );
  await cancelBatch(deps, batchId, batch.canceledBy ?? 'reconcile-sweep');
  return true;
}

/** Held batches read per page ({@link heldBatches}). */
const HELD_PAGE = 200;

/**
 * Asked by the reconcile sweep on every pass (payments/sweep.ts `SweepDeps.resumeStuckCancels`,
 * wired by the composition root): resumes the cancel of every batch held for approval that was
 * canceled at least `graceMs` ago and still waits in `awaiting_approval` (approved or not: an
 * approval whose release stopped partway, then a cancel, is the cancel's). A cancel marks the
 * batch canceled first, then turns its held rows into intents, fails them and lets the batch leave
 * `awaiting_approval`; one that stopped (its process died) before a single row became an intent
 * left no orphan for {@link resumeInterruptedCancel} to find, and the batch waited for someone to
 * cancel it again. No held row is enqueued meanwhile (approval is refused once canceled, and
 * {@link resumeApprovedReleases} leaves a canceled batch alone). Idempotent, like the cancel
 * itself; the grace leaves a cancel that is still running alone. Returns how many cancels it
 * resumed.
 */
export async function resumeCanceledHeldBatches(deps: BatchDeps, graceMs: number): Promise<number> {
  const now = deps.clock.now();
  let resumed = 0;
  for (const batch of await heldBatches(deps, 'cancels')) {
    if (!canceledWhileHeld(batch)) continue;
    if (now - (batch.canceledAt ?? now) < graceMs) continue;
    deps.logger.warn(
      { component: 'batch', batchId: batch.id, canceledBy: batch.canceledBy },
      'a held batch canceled before its release still awaits approval (its cancel was interrupted); resuming the cancel',
    );
    if (
      !(await resumedUnlessUnreadable(deps, batch.id, 'cancel', () =>
        cancelBatch(deps, batch.id, batch.canceledBy ?? 'reconcile-sweep'),
      ))
    )
      continue;
    resumed++;
  }
  return resumed;
}

/**
 * Asked by the reconcile sweep on every pass (payments/sweep.ts `SweepDeps.resumeStuckReleases`,
 * wired by the composition root): finishes the release of every batch approved at least `graceMs`
 * ago, never canceled, that still waits in `awaiting_approval`. An approval stamps `approvedAt`
 * first, then turns the held rows into intents and enqueues them a page at a time, then lets the
 * batch leave `awaiting_approval`; one that stopped (its process died) partway left its later
 * held rows unpaid: the rows it had released are re-enqueued by the sweep as any orphan, but rows
 * still only held are no intent for the sweep to find, and the batch waited for someone to
 * approve it again. The grace (the one the cancel resume uses) leaves an approval that is still
 * releasing alone; a resume that races it anyway is harmless: intents are created once (a row
 * already released is found as it is, and only a `queued` one is enqueued) and a submit job's id
 * is derived from the row's reference and queue entry, so enqueueing it twice adds one job. A
 * canceled batch is the cancel's ({@link resumeCanceledHeldBatches}), never released here; a
 * batch no longer awaiting approval was released already. Returns how many releases it resumed.
 */
export async function resumeApprovedReleases(deps: BatchDeps, graceMs: number): Promise<number> {
  const now = deps.clock.now();
  let resumed = 0;
  for (const batch of await heldBatches(deps, 'releases')) {
    if (!approvedWhileHeld(batch)) continue;
    if (now - (batch.approvedAt ?? now) < graceMs) continue;
    deps.logger.warn(
      { component: 'batch', batchId: batch.id, approvedBy: batch.approvedBy },
      'an approved batch still awaits approval (its release was interrupted); resuming the release',
    );
    if (!(await resumedUnlessUnreadable(deps, batch.id, 'release', () => release(deps, batch))))
      continue;
    resumed++;
  }
  return resumed;
}

/**
 * Runs one batch's resumed cancel or release; false, logged by `batchId` and the held row's
 * `row`, when a row of it cannot be read by this version (UnreadableRecordError): that batch stays
 * as it is (awaiting approval, its readable rows perhaps released, none paid twice: intents are
 * created once) and is named again at every sweep, and the sweep goes on with the other batches.
 */
async function resumedUnlessUnreadable(
  deps: BatchDeps,
  batchId: string,
  what: 'cancel' | 'release',
  run: () => Promise<unknown>,
): Promise<boolean> {
  try {
    await run();
    return true;
  } catch (err) {
    if (!(err instanceof UnreadableRecordError)) throw err;
    deps.logger.error(
      { component: 'batch', batchId, row: err.id, why: err.why },
      `a held row cannot be read by this version: the ${what} of its batch is not resumed; the other batches are`,
    );
    return false;
  }
}

/**
 * Every batch that awaits approval, as read now (a page of the state index at a time). One this
 * version cannot read is left out and logged by id for the resume that asked (`resuming`); it is
 * left as it is, in the index, and named again at every sweep.
 */
async function heldBatches(
  deps: BatchDeps,
  resuming: 'cancels' | 'releases',
): Promise<BatchRecord[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await deps.batches.listIds('awaiting_approval', HELD_PAGE, cursor);
    ids.push(...page.ids);
    cursor = page.next;
  } while (cursor !== undefined);
  return (await deps.batches.readMany(ids)).flatMap((batch) => {
    if (batch instanceof UnreadableRecordError) {
      deps.logger.error(
        { component: 'batch', batchId: batch.id, why: batch.why },
        `batch awaiting approval cannot be read by this version: the sweep's resume of interrupted ${resuming} skipped it`,
      );
      return [];
    }
    return batch?.state === 'awaiting_approval' ? [batch] : [];
  });
}

/**
 * The release of an approved batch: its held rows become intents and are enqueued, then it leaves
 * `awaiting_approval`. Idempotent (intents are created once, job ids are derived), so an approval
 * repeated and the sweep's resume both finish one that stopped partway.
 */
async function release(deps: BatchDeps, batch: BatchRecord): Promise<void> {
  // Canceled before its release finished (it still awaits approval): the rows not enqueued are
  // the cancel's, which is finished instead; letting the batch leave `awaiting_approval` here
  // would make the cancel's queued rows look like orphans to re-enqueue (canceledWhileHeld).
  if (canceledWhileHeld(batch)) {
    await cancelBatch(deps, batch.id, batch.canceledBy ?? 'reconcile-sweep');
    return;
  }
  // A batch canceled after its approval: its rows are the cancel's (created, never enqueued).
  if (batch.canceledAt === undefined) await releaseHeld(deps, batch, true);
  await deps.batches.finishRelease(batch.id, deps.clock.now());
}

/** Outcome of {@link approveBatch}. */
export type ApproveBatchResult =
  | { status: 'approved' | 'already_approved' | 'not_required'; batch: BatchRecord }
  | Extract<ApproveResult, { ok: false }>;

/**
 * Approves batch `id` for `by` and releases its rows (intents created and enqueued). Approving it
 * again resumes an interrupted release (idempotent: intents exist once, job ids are derived), as
 * the reconcile sweep does by itself once the approval is ORPHAN_AFTER old
 * ({@link resumeApprovedReleases}).
 */
export async function approveBatch(
  deps: BatchDeps,
  id: string,
  by: string,
): Promise<ApproveBatchResult> {
  const r = await deps.batches.approve(id, by, deps.clock.now());
  if (!r.ok) return r;
  const batch = await deps.batches.get(id);
  if (!batch) return { ok: false, why: 'missing' };
  if (r.notRequired === true) return { status: 'not_required', batch };
  await release(deps, batch);
  deps.logger.info({ component: 'batch', batchId: id, by }, 'batch approved');
  const after = (await deps.batches.get(id)) ?? batch;
  return { status: r.already ? 'already_approved' : 'approved', batch: after };
}

/** Outcome of {@link retryFailedBatch}. */
export type RetryResult =
  | { status: 'created' | 'existing' | 'resumed'; batch: BatchRecord; rows: number }
  | { status: 'nothing_to_retry'; batchId: string }
  | { status: 'not_found' }
  | { status: 'in_progress'; inProgress: number }
  | { status: 'conflict'; batchId: string };

/**
 * The id of the retry of `source`: `<root>-r<n>`, where a retry of a retry counts on from its
 * root (`X-r1` retried is `X-r2`). Kept within the batch id limit, and a new batch id (no `_`,
 * kernel/ids.ts `isNewBatchId`): a root too long for the suffix, or one of a batch stored before
 * that rule with `_` in its id, is replaced by 12 hex digits of its hash.
 */
export function retryBatchId(source: Pick<BatchRecord, 'id' | 'retryOf'>): string {
  const m = source.retryOf !== undefined ? /^(.*)-r(\d+)$/.exec(source.id) : null;
  const root = m?.[1] ?? source.id;
  const suffix = `-r${m ? Number(m[2]) + 1 : 1}`;
  if (root.length + suffix.length <= BATCH_ID_MAX && isNewBatchId(root)) return `${root}${suffix}`;
  return `${createHash('sha256').update(root).digest('hex').slice(0, 12)}${suffix}`;
}

const RETRY_FIELDS = ['key', 'line', 'state', 'reason', 'amount', 'currency', 'payee', 'meta'];

/** A row the retry takes: failed by the gateway's word (not canceled, not an operator's force). */
function retryable(state: string | null | undefined, reason: string | null | undefined): boolean {
  return state === 'failed' && reason !== CANCELED && reason !== OPERATOR_FORCED;
}

/**
 * Calls `each` for every page of the source's intents, as rows (fields of {@link RETRY_FIELDS}).
 */
async function eachPage(
  deps: BatchDeps,
  id: string,
  each: (rows: (string | null)[][]) => Promise<void> | void,
): Promise<void> {
  for (let offset = 0; ; offset += PAGE) {
    const keys = await deps.store.batchKeys(id, offset, PAGE);
    if (keys.length === 0) break;
    await each(await deps.batches.intentFields(keys, RETRY_FIELDS));
    if (keys.length < PAGE) break;
  }
}

/**
 * Makes the failed rows of batch `id` a new batch linked to it (`retryOf`, and `retriedBy` on the
 * first); `by` submits it (approval applies as to any new batch). Refused while any row is still
 * in flight. Repeating the call returns the retry made first.
 */
export async function retryFailedBatch(
  deps: BatchDeps,
  id: string,
  by: string,
  opts: { approval?: BatchApproval; leaseMs?: number } = {},
): Promise<RetryResult> {
  const source = await deps.batches.get(id);
  if (!source) return { status: 'not_found' };
  const leaseMs = opts.leaseMs ?? 30_000;
  const retryId = source.retriedBy ?? retryBatchId(source);
  // What makes a batch this one's retry (and not a batch someone named `<id>-r1`): its content
  // hash, derived from the source's id, which no uploaded file can have.
  const contentHash = createHash('sha256').update(`retry:${source.id}`).digest('hex');
  const prior = await deps.batches.get(retryId);
  if (prior && prior.contentHash !== contentHash) return { status: 'conflict', batchId: retryId };
  if (prior && prior.state !== 'ingesting') {
    return { status: 'existing', batch: prior, rows: prior.valid };
  }
  if (source.state === 'ingesting') return { status: 'in_progress', inProgress: source.valid };

  // First pass: nothing in flight, and the rows and money the retry will hold.
  let inProgress = 0;
  let rows = 0;
  const totals: Record<string, CurrencyTotal> = {};
  await eachPage(deps, id, (page) => {
    for (const [, , state, reason, amount, currency] of page) {
      const st = intentStateSchema.safeParse(state);
      if (!st.success || !isSettled(st.data)) inProgress++;
      else if (retryable(state, reason) && currency) {
        rows++;
        const t = (totals[currency] ??= { rows: 0, amount: 0 as AmountMinor });
        t.rows++;
        t.amount = (t.amount + Number(amount)) as AmountMinor;
      }
    }
  });
  if (source.state === 'awaiting_approval' || inProgress > 0) {
    return { status: 'in_progress', inProgress: inProgress || source.valid };
  }
  if (rows === 0) return { status: 'nothing_to_retry', batchId: id };

  const init: BatchInit = {
    id: retryId,
    type: source.type,
    source: `retry of ${source.id}`,
    contentHash,
    rows,
    valid: rows,
    invalid: 0,
    skipInvalid: false,
    // The same money the gateway said did not move: the references stay the first batch's.
    allowReusedReferences: true,
    metaKeys: source.metaKeys,
    totals,
    holdForApproval: needsApproval(opts.approval ?? 'none', source.type),
    submittedBy: by,
    retryOf: source.id,
  };
  const owner = randomBytes(8).toString('hex');
  const now = deps.clock.now();
  const claim = await deps.batches.claim(init, owner, now, leaseMs);
  let status: 'created' | 'resumed' = 'created';
  if (!claim.created) {
    const b = claim.batch;
    if (b.contentHash !== contentHash) return { status: 'conflict', batchId: retryId };
    if (b.state !== 'ingesting') return { status: 'existing', batch: b, rows: b.valid };
    const lapsed = (b.leaseUntil ?? 0) < now;
    if (!lapsed || !(await deps.batches.takeOver(retryId, owner, now, leaseMs))) {
      return { status: 'existing', batch: b, rows: b.valid };
    }
    status = 'resumed';
  }
  await deps.batches.linkRetry(source.id, retryId);

  // Second pass: the rows, under the retry's intent keys (so new references).
  const prefix = `bat_${source.id}_`;
  const hold = init.holdForApproval === true;
  await eachPage(deps, id, async (page) => {
    const chunk: BatchIntentRow[] = [];
    const selfRef: number[] = [];
    for (const [key, line, state, reason, amount, currency, payee, meta] of page) {
      if (!retryable(state, reason) || !key || !line || !currency || !payee) continue;
      const suffix = key.slice(prefix.length);
      if (suffix === line) selfRef.push(Number(line));
      chunk.push({
        key: batchIntentKey(retryId, suffix),
        line: Number(line),
        amount: Number(amount) as AmountMinor,
        currency: currency as Currency,
        payee,
        meta: meta ?? '',
      });
    }
    if (chunk.length === 0) return;
    const marked = await deps.batches.referencedLines(source.id, selfRef);
    await deps.batches.markReferencedLines(
      retryId,
      selfRef.filter((_, i) => marked[i] === true),
    );
    if (hold) {
      await deps.batches.holdRows(retryId, chunk);
    } else {
      const { intents } = await createOwnIntents(deps, {
        batchId: retryId,
        type: source.type,
        rows: chunk,
      });
      await deps.dispatcher.submitMany(intents.filter((intent) => intent.state === 'queued'));
    }
    await deps.batches.renew(retryId, owner, deps.clock.now(), leaseMs);
  });
  await deps.batches.finishIngest(retryId, deps.clock.now());
  deps.logger.info(
    { component: 'batch', batchId: retryId, retryOf: source.id, rows, by },
    'failed rows resubmitted as a new batch',
  );
  const batch = await deps.batches.get(retryId);
  if (!batch) throw new Error(`batch ${retryId} disappeared while retrying`);
  return { status, batch, rows };
}
