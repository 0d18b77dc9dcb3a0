/**
 * The reconcile sweep (a BullMQ job scheduler on RECONCILE_CRON, and `billing reconcile`). It is
 * the safety net under the per-intent check chain; its cost follows what is due, not the number
 * of intents:
 * 1. intents whose next check is due → a check job (same deterministic id as the chain's, so a
 *    live chain and the sweep collapse into one job);
 * 2. `submitting` intents whose lease expired (their worker died) → a check that moves them to
 *    `unknown` and verifies;
 * 3. `queued` intents older than a grace whose submit job is gone or failed → re-enqueued, unless
 *    the intent is a batch row its batch claims ({@link SweepDeps.claimBatchOrphan});
 * 4. with `olderThanMs`: every pending/requires_action/unknown intent unchanged for that long,
 *    due or not;
 * 5. batches held for approval whose cancel stopped before any row became an intent
 *    ({@link SweepDeps.resumeStuckCancels});
 * 6. batches approved whose release stopped before every held row was enqueued
 *    ({@link SweepDeps.resumeStuckReleases});
 * 7. dunning retry jobs of subscriptions that failed for good ({@link SweepDeps.rerunFailedDunning}).
 */
import type { Clock } from '../kernel/clock.ts';
import { UnreadableRecordError } from '../kernel/errors.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { IntentStore } from '../kernel/ports.ts';

export interface SweepDeps {
  store: IntentStore;
  dispatcher: Dispatcher;
  clock: Clock;
  logger: Logger;
  /** A queued intent this old without a live job is re-enqueued. */
  orphanAfterMs: number;
  /** At most this many intents per category per sweep; the next sweep continues. */
  batchSize?: number;
  /**
   * Asked before a queued orphan of a batch (`intent.batchId`) is re-enqueued: true when its batch
   * took care of it and it must not be sent. A batch held for approval and canceled before it was
   * approved never sends a row: an orphan of it was left by an interrupted cancel, which the
   * batches capability resumes (batches/operations.ts `resumeInterruptedCancel`). Wired by the
   * composition root (a capability never imports another); absent, every orphan is re-enqueued.
   */
  claimBatchOrphan?: (batchId: string) => Promise<boolean>;
  /**
   * Resumes the cancels of batches held for approval that were canceled at least `graceMs` ago and
   * still wait for approval: a cancel that stopped before any row became an intent leaves no
   * orphan for {@link claimBatchOrphan}. Returns how many it resumed. Wired by the composition root
   * (batches/operations.ts `resumeCanceledHeldBatches`, with ORPHAN_AFTER as the grace).
   */
  resumeStuckCancels?: (graceMs: number) => Promise<number>;
  /**
   * Finishes the release of batches approved at least `graceMs` ago (never canceled) that still
   * wait in `awaiting_approval`: an approval whose process died partway left held rows that are no
   * intent yet, so no orphan of them for the sweep to find. Returns how many it resumed. Wired by
   * the composition root (batches/operations.ts `resumeApprovedReleases`, with ORPHAN_AFTER as the
   * grace, as for cancels).
   */
  resumeStuckReleases?: (graceMs: number) => Promise<number>;
  /**
   * Runs once more the dunning retry jobs that failed for good at least `graceMs` ago and that
   * their subscription still wants: nothing else re-arms one. Returns how many it reran. Wired by
   * the composition root (subscriptions/dunning.ts `rerunFailedDunning`, ORPHAN_AFTER as the
   * grace).
   */
  rerunFailedDunning?: (graceMs: number) => Promise<number>;
}

export interface SweepResult {
  due: number;
  expiredLeases: number;
  requeued: number;
  /** Queued batch orphans their batch took care of instead ({@link SweepDeps.claimBatchOrphan}). */
  claimed: number;
  forced: number;
  /** Cancels of held batches resumed ({@link SweepDeps.resumeStuckCancels}). */
  cancelsResumed: number;
  /** Releases of approved batches resumed ({@link SweepDeps.resumeStuckReleases}). */
  releasesResumed: number;
  /** Dunning retry jobs run once more ({@link SweepDeps.rerunFailedDunning}). */
  dunningRerun: number;
}

/** Runs one sweep. Safe to run concurrently with another: every action is idempotent. */
export async function runSweep(
  deps: SweepDeps,
  opts: { olderThanMs?: number } = {},
): Promise<SweepResult> {
  const now = deps.clock.now();
  const runId = String(now);
  const limit = deps.batchSize ?? 1_000;
  const result: SweepResult = {
    due: 0,
    expiredLeases: 0,
    requeued: 0,
    claimed: 0,
    forced: 0,
    cancelsResumed: 0,
    releasesResumed: 0,
    dunningRerun: 0,
  };

  for (const key of await deps.store.dueForReconcile(now, limit)) {
    const intent = await readIntent(deps, key);
    if (!intent) continue;
    await deps.dispatcher.reconcile(intent, { delayMs: 0, cause: 'sweep', runId });
    result.due++;
  }

  for (const key of await deps.store.expiredLeases(now, limit)) {
    const intent = await readIntent(deps, key);
    if (!intent || intent.state !== 'submitting') continue;
    await deps.dispatcher.reconcile(intent, { delayMs: 0, cause: 'lease', runId });
    result.expiredLeases++;
  }

  for (const key of await deps.store.queuedSince(now - deps.orphanAfterMs, limit)) {
    const intent = await readIntent(deps, key);
    if (!intent || intent.state !== 'queued') continue;
    const state = await deps.dispatcher.submitJobState(intent);
    if (state === 'waiting') continue;
    if (intent.batchId !== undefined && deps.claimBatchOrphan) {
      let claimed: boolean;
      try {
        claimed = await deps.claimBatchOrphan(intent.batchId);
      } catch (err) {
        // Undecided is not sent: the next sweep asks again.
        deps.logger.warn(
          { key, batchId: intent.batchId, err: { message: (err as Error).message } },
          'queued batch row had no live job; its batch could not be asked, so it is not re-enqueued',
        );
        continue;
      }
      if (claimed) {
        result.claimed++;
        continue;
      }
    }
    if (state === 'missing') {
      await deps.dispatcher.submit(intent);
    } else {
      // The job ended without the intent leaving `queued` (retries exhausted while provably
      // unsent, or a stale duplicate): run it again.
      await deps.dispatcher.rerunSubmit(intent, state);
    }
    result.requeued++;
    deps.logger.warn(
      { key, reference: intent.reference, jobState: state },
      'queued intent had no live job: re-enqueued',
    );
  }

  if (opts.olderThanMs !== undefined) {
    for (const state of ['pending', 'requires_action', 'unknown'] as const) {
      for (const key of await deps.store.keysUpdatedBefore(state, now - opts.olderThanMs, limit)) {
        const intent = await readIntent(deps, key);
        if (!intent || intent.state !== state) continue;
        await deps.dispatcher.reconcile(intent, { delayMs: 0, cause: 'manual', runId });
        result.forced++;
      }
    }
  }
  // Held batches: both resumes are idempotent, so one that fails is tried again by the next sweep
  // (nothing of a canceled batch is sent meanwhile; an approval repeated finishes a release too).
  // So is a dunning rerun: its handler decides again, and a failed job stays failed until rerun.
  result.cancelsResumed = await resumed(
    deps,
    deps.resumeStuckCancels,
    'held batches whose cancel was interrupted could not be checked',
  );
  result.releasesResumed = await resumed(
    deps,
    deps.resumeStuckReleases,
    'approved batches whose release was interrupted could not be checked',
  );
  result.dunningRerun = await resumed(
    deps,
    deps.rerunFailedDunning,
    'failed dunning retry jobs could not be checked',
  );
  if (Object.values(result).some((n) => n > 0)) {
    deps.logger.info({ ...result }, 'reconcile sweep');
  }
  return result;
}

/**
 * The intent the sweep looked up; undefined, logged by key, when this version cannot read it
 * (another version's state, a hand edit, half-written): the sweep goes on with the others, and
 * names it again at every sweep until an operator fixes it (it stays in its indexes as it is).
 */
async function readIntent(deps: SweepDeps, key: string) {
  try {
    return await deps.store.get(key);
  } catch (err) {
    if (!(err instanceof UnreadableRecordError)) throw err;
    deps.logger.error(
      { key, why: err.why },
      'intent cannot be read by this version: the reconcile sweep skipped it',
    );
    return undefined;
  }
}

/** How many `resume` resumed (given the ORPHAN_AFTER grace); 0, logged, when it failed. */
async function resumed(
  deps: SweepDeps,
  resume: ((graceMs: number) => Promise<number>) | undefined,
  failure: string,
): Promise<number> {
  if (!resume) return 0;
  try {
    return await resume(deps.orphanAfterMs);
  } catch (err) {
    deps.logger.warn({ err: { message: (err as Error).message } }, failure);
    return 0;
  }
}
