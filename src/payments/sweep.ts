/**
 * The reconcile sweep (a BullMQ job scheduler on RECONCILE_CRON, and `billing reconcile`). It is
 * the safety net under the per-intent check chain; its cost follows what is due, not the number
 * of intents:
 * 1. intents whose next check is due → a check job (same deterministic id as the chain's, so a
 *    live chain and the sweep collapse into one job);
 * 2. `submitting` intents whose lease expired (their worker died) → a check that moves them to
 *    `unknown` and verifies;
 * 3. `queued` intents older than a grace whose submit job is gone or failed → re-enqueued;
 * 4. with `olderThanMs`: every pending/requires_action/unknown intent unchanged for that long,
 *    due or not.
 */
import type { Clock } from '../kernel/clock.ts';
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
}

export interface SweepResult {
  due: number;
  expiredLeases: number;
  requeued: number;
  forced: number;
}

/** Runs one sweep. Safe to run concurrently with another: every action is idempotent. */
export async function runSweep(
  deps: SweepDeps,
  opts: { olderThanMs?: number } = {},
): Promise<SweepResult> {
  const now = deps.clock.now();
  const runId = String(now);
  const limit = deps.batchSize ?? 1_000;
  const result: SweepResult = { due: 0, expiredLeases: 0, requeued: 0, forced: 0 };

  for (const key of await deps.store.dueForReconcile(now, limit)) {
    const intent = await deps.store.get(key);
    if (!intent) continue;
    await deps.dispatcher.reconcile(intent, { delayMs: 0, cause: 'sweep', runId });
    result.due++;
  }

  for (const key of await deps.store.expiredLeases(now, limit)) {
    const intent = await deps.store.get(key);
    if (!intent || intent.state !== 'submitting') continue;
    await deps.dispatcher.reconcile(intent, { delayMs: 0, cause: 'lease', runId });
    result.expiredLeases++;
  }

  for (const key of await deps.store.queuedSince(now - deps.orphanAfterMs, limit)) {
    const intent = await deps.store.get(key);
    if (!intent || intent.state !== 'queued') continue;
    const state = await deps.dispatcher.submitJobState(intent);
    if (state === 'missing') {
      await deps.dispatcher.submit(intent);
    } else if (state === 'failed' || state === 'completed') {
      // The job ended without the intent leaving `queued` (retries exhausted while provably
      // unsent, or a stale duplicate): run it again.
      await deps.dispatcher.rerunSubmit(intent, state);
    } else {
      continue;
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
        const intent = await deps.store.get(key);
        if (!intent || intent.state !== state) continue;
        await deps.dispatcher.reconcile(intent, { delayMs: 0, cause: 'manual', runId });
        result.forced++;
      }
    }
  }
  if (result.due + result.expiredLeases + result.requeued + result.forced > 0) {
    deps.logger.info({ ...result }, 'reconcile sweep');
  }
  return result;
}
