/**
 * Queue names and deterministic job ids. BullMQ refuses `:` in custom job ids; intent keys and
 * references never contain one.
 */
import type { IntentType } from '../../kernel/intent.ts';

export const QUEUES = {
  charges: 'charges',
  payouts: 'payouts',
  reconcile: 'reconcile',
  notifications: 'notifications',
  subscriptions: 'subscriptions',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export function submitQueueFor(type: IntentType): QueueName {
  // Refunds ride the charges queue (docs/refunds.md): they give a charge's money back.
  return type === 'payout' ? QUEUES.payouts : QUEUES.charges;
}

/**
 * One submit job per (intent incarnation, attempt, time the intent entered `queued`): replays and
 * duplicates collapse, and a job of a lost intent never stands in for a new one with its key.
 */
export function submitJobId(reference: string, enqueues: number, incarnation?: string): string {
  return `${reference}-q${enqueues}${incarnationSuffix(incarnation)}`;
}

/** `-<incarnation>`, or nothing for intents stored before incarnations existed. */
function incarnationSuffix(incarnation: string | undefined): string {
  return incarnation ? `-${incarnation}` : '';
}

/**
 * Reconcile job ids. A scheduled check: one per (attempt, queue entry, state, check number), so a
 * new episode (resubmitted after verify proved it unsent, or the payout watch after a pending
 * phase) gets fresh ids. A webhook check: its own id, so duplicated webhooks collapse and a later
 * one (a reversal after success, which claims another status) is not swallowed. A sweep check: one per sweep run (`runId`), so
 * a chain whose job ended without advancing is picked up again; the store's check counter (not
 * the job id) decides who advances the schedule.
 */
export function reconcileJobId(
  intent: {
    reference: string;
    enqueues: number;
    state: string;
    checks: number;
    incarnation?: string;
  },
  cause: 'check' | 'webhook' | 'sweep',
  runId?: string,
): string {
  const base = `${intent.reference}-q${intent.enqueues}-${intent.state}-${intent.checks}${incarnationSuffix(intent.incarnation)}`;
  // For webhooks `runId` is the status the webhook claims: a reversal after a success webhook is
  // a new fact and must not collapse into the success webhook's job.
  if (cause === 'webhook') return `wh-${base}-${runId ?? 'any'}`;
  if (cause === 'sweep') return `sw-${base}-${runId ?? '0'}`;
  return `rc-${base}`;
}
