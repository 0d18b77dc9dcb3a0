/**
 * The `subscriptions.dunning` job handler (rules 6 and 9, record.ts): opens attempt n+1 of a failed
 * intent — only when attempt n is final `failed` by the gateway's own word (checked here, and the
 * store's `failed → queued` transition with `newAttempt` and `expectAttempt` enforces it) — and
 * enqueues its charge. The retries themselves are decided by the outcome rules (outcomes.ts) and
 * enqueued as delayed jobs (jobs.ts).
 */
import type { Clock } from '../kernel/clock.ts';
import type { IntentStore } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { JobPayload } from '../infra/queues/catalog.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { HandlerContext } from '../infra/queues/processor.ts';
import { timeOf } from './clock-runner.ts';
import { retryTransition } from './billing.ts';
import { dunningJobId } from './jobs.ts';
import type { SubscriptionStore } from './ports.ts';
import { retryOf } from './record.ts';

export interface DunningDeps {
  subs: SubscriptionStore;
  intents: IntentStore;
  dispatcher: Dispatcher;
  clock: Clock;
}

/**
 * Handler for `subscriptions.dunning`: if the subscription still wants retry `step` of `key`
 * (not paused or canceled, the step current), opens the next attempt of the failed intent and
 * enqueues its charge.
 *
 * The invariant (rule 9, record.ts): a new attempt reference for the same money is created only
 * after the gateway itself said the previous attempt is final and moved nothing, which is what
 * `failed` at the dunning entry's attempt means (outcomes.ts). In any other case the retry opens
 * nothing and is dropped, never re-armed:
 * - attempt n+1 exists (an earlier run of this job, or of the job a resume re-scheduled, opened
 *   it): `queued` is re-enqueued (that run died before enqueueing, same job id); otherwise its own
 *   outcome decides what follows (success closes dunning, the gateway's failure schedules the next
 *   retry, an unresolved state holds billing);
 * - attempt n is not `failed` (a payment that left `failed` without a new attempt: payments'
 *   table has no such path, so this is logged as a warning): nothing is opened, and the
 *   subscription stays in dunning with billing held until the payment is settled by hand.
 * Re-arming is never needed: the only thing that arms a retry is the gateway's `failed` for the
 * entry's attempt, and each later failure arms the next step itself. A job that failed for good
 * (its attempts spent on errors) is the sweep's to run again ({@link rerunFailedDunning}).
 *
 * The new attempt is a new reference for the period's money (same intent: same amount and
 * currency). It charges the subscription's current card (rule 11): the new attempt gets the
 * subscription's sealed card token as its payee. A retry of an existing attempt (a resubmission
 * of the same reference) keeps everything: the store sets a payee only with a new attempt.
 *
 * Before opening it, the job marks the entry `opening` on the record (compare-and-set, checking
 * again that the subscription is neither paused nor canceled and still wants this step): an
 * action stored before the mark stops the retry, and one that comes after it opens the attempt
 * itself before answering (in-flight.ts). The next outcome of the entry replaces the mark.
 */
export function createDunningHandler(deps: DunningDeps) {
  return async (
    data: JobPayload<'subscriptions.dunning'>,
    { log }: HandlerContext,
  ): Promise<unknown> => {
    const { subscriptionId, key, step } = data;
    const current = await deps.subs.get(subscriptionId);
    if (!current) return { skipped: 'missing' };
    const sub = current.sub;
    if (sub.status === 'paused' || sub.status === 'canceled') return { skipped: sub.status };
    const entry = sub.dunning.find((d) => d.key === key);
    if (!entry || entry.step !== step) return { skipped: 'stale' };
    const intent = await deps.intents.get(key);
    if (!intent) return { skipped: 'missing_intent' };
    if (intent.attempt > entry.attempt) {
      if (intent.state === 'queued' && intent.attempt === entry.attempt + 1) {
        // Opened by an earlier run of this job that died before enqueueing: enqueue (same job id).
        await deps.dispatcher.submit(intent);
        return { resubmitted: intent.reference };
      }
      return { skipped: 'already_opened', state: intent.state, attempt: intent.attempt };
    }
    if (intent.state !== 'failed' || intent.attempt !== entry.attempt) {
      log.warn(
        {
          subscriptionId,
          key,
          reference: intent.reference,
          state: intent.state,
          attempt: intent.attempt,
          expected: entry.attempt,
        },
        'dunning retry found the previous attempt not failed: no new attempt is opened',
      );
      return { skipped: 'not_failed', state: intent.state, attempt: intent.attempt };
    }
    // `expectAttempt` makes the store refuse if another run opened n+1 since the read above.
    // On a test clock, the clock's time (test-clocks.ts).
    const now = (await timeOf(deps.subs, deps.clock, sub.testClock)) ?? deps.clock.now();
    // Mark the attempt as being opened, compare-and-set on the record still wanting it: a pause,
    // cancel or change stored before the mark stops the retry here; one that comes after finds
    // the mark and opens the attempt itself before it answers (in-flight.ts). Either way no retry
    // is created after an action answered, and it takes the card accepted last before it.
    const marked = await deps.subs.mutate<{ skipped: string } | undefined>(subscriptionId, (s) => {
      const e = s.dunning.find((d) => d.key === key);
      if (s.status === 'paused' || s.status === 'canceled')
        return { decision: { events: [] }, value: { skipped: s.status } };
      if (!e || e.step !== step || e.attempt !== entry.attempt)
        return { decision: { events: [] }, value: { skipped: 'stale' } };
      if (e.opening === entry.attempt + 1) return { decision: { events: [] }, value: undefined };
      const next = {
        ...s,
        dunning: s.dunning.map((d) => (d === e ? { ...d, opening: entry.attempt + 1 } : d)),
      };
      return { decision: { next, events: [] }, value: undefined };
    });
    if (!marked.found) return { skipped: 'missing' };
    if (marked.value) return marked.value;
    // Rule 11: the subscription's current card, as of the mark.
    const res = await deps.intents.transition(
      key,
      'queued',
      now,
      retryTransition(intent, marked.sub.cardTokenSealed),
    );
    if (!res.ok) return { skipped: res.why };
    await deps.dispatcher.submit(res.intent);
    log.info(
      { subscriptionId, key, reference: res.intent.reference, retry: step + 1 },
      'dunning retry submitted',
    );
    return { submitted: res.intent.reference };
  };
}

export interface FailedDunningDeps {
  subs: SubscriptionStore;
  dispatcher: Dispatcher;
  clock: Clock;
  logger: Logger;
}

/** Failed jobs of the subscriptions queue looked at per run, newest failure first. */
const FAILED_JOBS_PER_RUN = 1_000;

/**
 * The backstop under the dunning job's own retries (run by the reconcile sweep): a dunning job
 * that failed for good (its five attempts spent, e.g. on Redis errors through an outage) at least
 * `graceMs` ago is run once more when its subscription still wants exactly that retry: not paused
 * or canceled, the entry of its intent at its step, under the record's resume count (the job's id
 * is the one the record's retry has). Without it the subscription stayed `past_due` for good: no
 * retry, no cancel at the schedule's end, no new period (a subscription in dunning is in no due
 * index). The handler decides again whatever this reads, so a rerun of a retry no longer wanted
 * skips. One attempt per rerun: a job that keeps failing is rerun by each sweep and counted as
 * failed each time (the failed-jobs alert). Returns how many it reran.
 */
export async function rerunFailedDunning(
  deps: FailedDunningDeps,
  graceMs: number,
): Promise<number> {
  const failed = await deps.dispatcher.failedJobs('subscriptions.dunning', {
    failedBefore: deps.clock.now() - graceMs,
    limit: FAILED_JOBS_PER_RUN,
  });
  const log = deps.logger.child({ component: 'dunning-backstop' });
  // Every record in one round trip: the records read are checked again by the handler anyway.
  const records = await deps.subs.getMany(failed.map((job) => job.data.subscriptionId));
  let rerun = 0;
  for (const [i, job] of failed.entries()) {
    const { subscriptionId, key, step } = job.data;
    const current = records[i];
    if (!current) continue;
    const sub = current.sub;
    if (sub.status === 'paused' || sub.status === 'canceled') continue;
    const entry = sub.dunning.find((d) => d.key === key && d.step === step);
    if (!entry || dunningJobId(retryOf(sub, entry)) !== job.id) continue;
    try {
      await job.rerun();
    } catch (err) {
      // Retried or removed by someone else since it was read: nothing to do.
      log.debug({ jobId: job.id, err: { message: (err as Error).message } }, 'not rerun');
      continue;
    }
    rerun++;
    log.warn(
      { subscriptionId, key, step, jobId: job.id, failedAt: job.failedAt },
      'dunning retry job had failed for good: run once more',
    );
  }
  return rerun;
}
