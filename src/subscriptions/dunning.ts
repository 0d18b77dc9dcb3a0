/**
 * The `subscriptions.dunning` job handler (rule 6, record.ts): opens attempt n+1 of a failed
 * intent — only when attempt n is final `failed` (the store's `failed → queued` transition with
 * `newAttempt` and `expectAttempt` enforces it) — and enqueues its charge. The retries themselves
 * are decided by the outcome rules (outcomes.ts) and enqueued as delayed jobs (jobs.ts).
 */
import type { Clock } from '../kernel/clock.ts';
import type { IntentStore } from '../kernel/ports.ts';
import type { JobPayload } from '../infra/queues/catalog.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { HandlerContext } from '../infra/queues/processor.ts';
import type { SubscriptionStore } from './ports.ts';

export interface DunningDeps {
  subs: SubscriptionStore;
  intents: IntentStore;
  dispatcher: Dispatcher;
  clock: Clock;
}

/**
 * Handler for `subscriptions.dunning`: if the subscription still wants retry `step` of `key`
 * (not paused or canceled, the step current), opens the next attempt of the failed intent and
 * enqueues its charge. A stale or replayed job changes nothing.
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
    if (intent.state === 'queued' && intent.attempt === entry.attempt + 1) {
      // Opened by an earlier run of this job that died before enqueueing: enqueue (same job id).
      await deps.dispatcher.submit(intent);
      return { resubmitted: intent.reference };
    }
    if (intent.state !== 'failed' || intent.attempt !== entry.attempt) {
      return { skipped: 'not_failed', state: intent.state, attempt: intent.attempt };
    }
    const res = await deps.intents.transition(key, 'queued', deps.clock.now(), {
      newAttempt: true,
      expectAttempt: entry.attempt,
      reason: 'dunning_retry',
    });
    if (!res.ok) return { skipped: res.why };
    await deps.dispatcher.submit(res.intent);
    log.info(
      { subscriptionId, key, reference: res.intent.reference, retry: step + 1 },
      'dunning retry submitted',
    );
    return { submitted: res.intent.reference };
  };
}
