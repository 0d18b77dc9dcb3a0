/**
 * Jobs of recurring billing, with deterministic ids: dunning retries and the tick's job scheduler.
 * Charge submissions go through the dispatcher's one submit-job builder. Payloads carry keys and
 * amounts, never card tokens.
 */
import type { DunningRetry } from './record.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';

/** The id of the BullMQ job scheduler that fires `subscriptions.tick` on `SCHEDULER_CRON`. */
export const TICK_SCHEDULER_ID = 'subscriptions-tick';

/** One dunning retry job per (intent, retry step, resume count): replays collapse into it. */
export function dunningJobId(retry: Pick<DunningRetry, 'key' | 'step' | 'resumes'>): string {
  return `dun-${retry.key}-s${retry.step}-r${retry.resumes}`;
}

/** Enqueues dunning retries as delayed `subscriptions.dunning` jobs, due at their `dueAt`. */
export async function enqueueDunningRetries(
  dispatcher: Dispatcher,
  retries: readonly DunningRetry[],
  now: number,
): Promise<void> {
  await dispatcher.addMany(
    'subscriptions.dunning',
    retries.map((r) => ({
      data: { subscriptionId: r.subscriptionId, key: r.key, step: r.step },
      jobId: dunningJobId(r),
      delayMs: Math.max(0, r.dueAt - now),
    })),
  );
}
