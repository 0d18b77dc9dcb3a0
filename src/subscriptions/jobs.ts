/**
 * Jobs of recurring billing, with deterministic ids: charge submissions added in bulk (one
 * round trip for a tick's worth of intents), dunning retries, and the tick's job scheduler.
 * Payloads carry keys and amounts, never card tokens.
 */
import type { Queue } from 'bullmq';
import type { Intent } from '../kernel/payment.ts';
import type { DunningRetry } from './rules.ts';
import { bullJobName, jobOptionsFor } from '../infra/queues/catalog.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { QUEUES, submitJobId, submitQueueFor } from '../infra/queues/names.ts';

/** The id of the BullMQ job scheduler that fires `subscriptions.tick` on `SCHEDULER_CRON`. */
export const TICK_SCHEDULER_ID = 'subscriptions-tick';

/** One dunning retry job per (intent, retry step, resume count): replays collapse into it. */
export function dunningJobId(retry: Pick<DunningRetry, 'key' | 'step' | 'resumes'>): string {
  return `dun-${retry.key}-s${retry.step}-r${retry.resumes}`;
}

/**
 * Enqueues the submit jobs of `intents` (all in `queued`) with the dispatcher's deterministic
 * job ids, one `addBulk` per queue: what `dispatcher.submit` does, for many at once.
 */
export async function submitMany(
  dispatcher: Dispatcher,
  intents: readonly Intent[],
): Promise<void> {
  const byQueue = new Map<'charges' | 'payouts', Intent[]>();
  for (const intent of intents) {
    const q = submitQueueFor(intent.type) === QUEUES.charges ? 'charges' : 'payouts';
    byQueue.set(q, [...(byQueue.get(q) ?? []), intent]);
  }
  await Promise.all(
    [...byQueue].map(([q, list]) => {
      const name = q === 'charges' ? 'charges.submit' : 'payouts.submit';
      return dispatcher.queue(QUEUES[q]).addBulk(
        list.map((intent) => ({
          name: bullJobName(name),
          data: {
            key: intent.key,
            attempt: intent.attempt,
            amount: intent.amount,
            currency: intent.currency,
          },
          opts: { ...jobOptionsFor(name), jobId: submitJobId(intent.reference, intent.enqueues) },
        })),
      );
    }),
  );
}

/** Enqueues dunning retries as delayed `subscriptions.dunning` jobs, due at their `dueAt`. */
export async function enqueueDunningRetries(
  queue: Queue,
  retries: readonly DunningRetry[],
  now: number,
): Promise<void> {
  if (retries.length === 0) return;
  await queue.addBulk(
    retries.map((r) => ({
      name: bullJobName('subscriptions.dunning'),
      data: { subscriptionId: r.subscriptionId, key: r.key, step: r.step },
      opts: {
        ...jobOptionsFor('subscriptions.dunning'),
        jobId: dunningJobId(r),
        delay: Math.max(0, r.dueAt - now),
      },
    })),
  );
}

/** The queue the tick and dunning jobs run on. */
export function subscriptionsQueue(dispatcher: Dispatcher): Queue {
  return dispatcher.queue(QUEUES.subscriptions);
}
