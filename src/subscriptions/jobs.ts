/**
 * Jobs of recurring billing, with deterministic ids: dunning retries, the tick's job scheduler and
 * the steps of an advancing test clock. Charge submissions go through the dispatcher's one
 * submit-job builder. Payloads carry keys and amounts, never card tokens.
 */
import type { DunningRetry } from './record.ts';
import { clockJobId } from './test-clocks.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';

/** The id of the BullMQ job scheduler that fires `subscriptions.tick` on `SCHEDULER_CRON`. */
export const TICK_SCHEDULER_ID = 'subscriptions-tick';

/** One dunning retry job per (intent, retry step, resume count): replays collapse into it. */
export function dunningJobId(retry: Pick<DunningRetry, 'key' | 'step' | 'resumes'>): string {
  return `dun-${retry.key}-s${retry.step}-r${retry.resumes}`;
}

/**
 * Enqueues dunning retries as delayed `subscriptions.dunning` jobs, due at their `dueAt`. A
 * retry of a subscription on a test clock is left out: its clock runs it when the clock's time
 * reaches `dueAt` ({@link enqueueDunningNow}), never on the real clock.
 */
export async function enqueueDunningRetries(
  dispatcher: Dispatcher,
  retries: readonly DunningRetry[],
  now: number,
): Promise<void> {
  await dispatcher.addMany(
    'subscriptions.dunning',
    retries
      .filter((r) => r.testClock === undefined)
      .map((r) => ({
        data: { subscriptionId: r.subscriptionId, key: r.key, step: r.step },
        jobId: dunningJobId(r),
        delayMs: Math.max(0, r.dueAt - now),
      })),
  );
}

/** Enqueues dunning retries to run now (a test clock's, due on its time), same job ids. */
export async function enqueueDunningNow(
  dispatcher: Dispatcher,
  retries: readonly DunningRetry[],
): Promise<void> {
  await dispatcher.addMany(
    'subscriptions.dunning',
    retries.map((r) => ({
      data: { subscriptionId: r.subscriptionId, key: r.key, step: r.step },
      jobId: dunningJobId(r),
    })),
  );
}

/** Enqueues step `seq` of an advancing test clock (a `subscriptions.tick` job naming it). */
export async function enqueueClockStep(
  dispatcher: Dispatcher,
  clock: { id: string; seq: number },
  delayMs = 0,
): Promise<void> {
  await dispatcher.addMany('subscriptions.tick', [
    {
      data: { testClock: clock.id, seq: clock.seq },
      jobId: clockJobId(clock.id, clock.seq),
      ...(delayMs > 0 ? { delayMs } : {}),
    },
  ]);
}
