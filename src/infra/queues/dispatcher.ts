/**
 * Adds catalog jobs with deterministic ids, so a replay, a duplicate request or a second
 * scheduler collapses into the job that already exists.
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import type { Intent } from '../../kernel/payment.ts';
import { bullJobName, jobOptionsFor, type JobName } from './catalog.ts';
import { QUEUES, reconcileJobId, submitJobId, submitQueueFor, type QueueName } from './names.ts';

export interface Dispatcher {
  /** Enqueues the submit job of the intent's current attempt and queue entry. */
  submit(intent: Intent): Promise<void>;
  /** Enqueues a reconcile check of the intent, `delayMs` from now, identified by its check number. */
  reconcile(
    intent: Intent,
    opts: {
      delayMs: number;
      cause: 'schedule' | 'webhook' | 'sweep' | 'lease' | 'manual';
      /** Sweep, lease and manual checks: the sweep run. Webhook checks: the status it claims. */
      runId?: string;
    },
  ): Promise<void>;
  /**
   * Enqueues a webhook-triggered check for an intent not written yet; the job retries (with
   * backoff) until the intent exists.
   */
  reconcileEarly(key: string, reference: string): Promise<void>;
  queue(name: QueueName): Queue;
  close(): Promise<void>;
}

export function createDispatcher(connection: ConnectionOptions, prefix: string): Dispatcher {
  const queues = new Map<QueueName, Queue>();
  const queue = (name: QueueName) => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, {
        connection,
        prefix,
        defaultJobOptions: {
          // Keep enough history for the dashboard and for duplicate-id collapse, bounded in memory.
          removeOnComplete: { age: 24 * 3600, count: 50_000 },
          removeOnFail: { age: 7 * 24 * 3600 },
        },
      });
      queues.set(name, q);
    }
    return q;
  };
  const add = async (name: JobName, data: object, jobId: string, delayMs = 0) => {
    const target = name.startsWith('charges.')
      ? QUEUES.charges
      : name.startsWith('payouts.')
        ? QUEUES.payouts
        : QUEUES.reconcile;
    await queue(target).add(bullJobName(name), data, {
      ...jobOptionsFor(name),
      jobId,
      delay: delayMs,
    });
  };
  return {
    async submit(intent) {
      const name: JobName =
        submitQueueFor(intent.type) === QUEUES.charges ? 'charges.submit' : 'payouts.submit';
      await add(
        name,
        {
          key: intent.key,
          attempt: intent.attempt,
          amount: intent.amount,
          currency: intent.currency,
        },
        submitJobId(intent.reference, intent.enqueues),
      );
    },
    async reconcile(intent, { delayMs, cause, runId }) {
      const id = reconcileJobId(
        intent,
        cause === 'webhook' ? 'webhook' : cause === 'schedule' ? 'check' : 'sweep',
        runId,
      );
      await add('reconcile.check', { key: intent.key, cause, checks: intent.checks }, id, delayMs);
    },
    async reconcileEarly(key, reference) {
      await add('reconcile.check', { key, cause: 'webhook' }, `wh-${reference}-early`);
    },
    queue,
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}
