/**
 * The subscription sweep (docs/product.md §7, docs/subscriptions.md "The sweep"): a BullMQ job
 * scheduler fires `subscriptions.tick` on `SCHEDULER_CRON` (module.ts); each tick bills what is
 * due.
 *
 * A tick reads the due index (`ZRANGEBYSCORE … LIMIT`, in chunks), so its cost follows the due
 * subscriptions, not the total. Per subscription it claims the due periods (compare-and-set lease
 * on the record), creates one intent per period (`sub_<id>_<yyyymmdd>`, oldest first), enqueues
 * the charges in bulk with deterministic job ids, and commits the claim. Two schedulers or
 * overlapping ticks race on the claim and only one wins; if a lease expires under a slow tick,
 * the intent store's existence check and the deterministic job ids still make the second
 * attempt a no-op. A tick that dies mid-way leaves a lease that expires, and the next tick
 * finishes the job. A pause, cancel or change that finds the claim finishes it too (creates the
 * same intents from the same record, enqueues them, commits) before it is stored
 * (in-flight.ts): this tick then finds its intents created and its claim committed, and counts
 * the subscription as contended.
 *
 * Before billing on top of earlier charges that have no final outcome applied yet (the record's
 * `openCharges`), the tick reads their intents, after the records (rule 9, holds.ts): one that is
 * `unknown`, `pending`, `requires_action` or `needs_review` holds the subscription's billing
 * instead (stored with its `subscription.billing_held` event, compare-and-set), so no period is
 * charged on top of a payment that may have moved money. Usually there is nothing to read: a
 * period's outcome is applied long before the next period is due.
 *
 * The due index also scores the scheduled lifecycle actions (rules 10, 12: a trial's notice, a
 * pause's `resume_at`, a cancel at the period's end): the tick applies those due first, in the
 * same compare-and-set write as its claim (claims.ts, lifecycle.ts). A tick for a test clock
 * (`deps.testClock`) reads that clock's own due index at the clock's time (test-clocks.ts).
 */
import type { Intent } from '../kernel/payment.ts';
import { chargeDraft, commitBilling } from './billing.ts';
import { claimAll, type TickDeps, type TickResult } from './claims.ts';

export type { TickDeps, TickResult } from './claims.ts';

/** How long a tick's claim on a subscription holds before another tick may take it over. */
export const DEFAULT_CLAIM_LEASE_MS = 5 * 60_000;
const DEFAULT_CHUNK = 500;
const DEFAULT_MAX_PER_TICK = 100_000;

/**
 * One sweep at `now`: bills every subscription due at `now` (up to `maxPerTick`). Safe to run
 * concurrently with itself and on several processes.
 */
export async function runTick(deps: TickDeps, now: number): Promise<TickResult> {
  const chunkSize = deps.chunkSize ?? DEFAULT_CHUNK;
  const maxPerTick = deps.maxPerTick ?? DEFAULT_MAX_PER_TICK;
  const leaseMs = deps.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS;
  const log = deps.logger.child({ component: 'subscription-tick' });
  const result: TickResult = {
    due: 0,
    billed: 0,
    created: 0,
    enqueued: 0,
    skipped: 0,
    contended: 0,
    held: 0,
    scheduled: 0,
    failed: 0,
  };
  const seen = new Set<string>();

  while (seen.size < maxPerTick) {
    const ids = await deps.subs.dueIds(
      now,
      Math.min(chunkSize, maxPerTick - seen.size),
      deps.testClock,
    );
    // A subscription billed this tick is rescored into the future; one still at or before `now`
    // (held by another tick, failed) would come back: each is handled once per tick.
    const fresh = ids.filter((id) => !seen.has(id));
    if (fresh.length === 0) break;
    for (const id of fresh) seen.add(id);
    result.due += fresh.length;

    const claimed = await claimAll(deps, fresh, now, leaseMs, log, result);

    // Intents oldest period first within each subscription; the store refuses a second intent
    // for a key, so a period claimed twice (expired lease) still has one.
    const perSub = await Promise.all(
      claimed.map(async (c) => {
        try {
          const made: { created: boolean; intent: Intent }[] = [];
          for (const n of c.plan.periods)
            made.push(await deps.intents.create(chargeDraft(c.sub, n), now));
          return made;
        } catch (err) {
          result.failed += 1;
          log.error(
            { subscriptionId: c.sub.id, err: { message: (err as Error).message } },
            'could not create the period intents; the claim will expire and be retried',
          );
          return undefined;
        }
      }),
    );
    const toSubmit: Intent[] = [];
    perSub.forEach((made, i) => {
      const c = claimed[i];
      if (!made || !c) return;
      for (const { created, intent } of made) {
        if (created) result.created += 1;
        // An intent found beyond `queued` is in flight or done: never enqueued again.
        if (intent.state === 'queued') toSubmit.push(intent);
        if (created)
          log.info(
            {
              subscriptionId: c.sub.id,
              key: intent.key,
              amount: intent.amount,
              currency: intent.currency,
            },
            'subscription period billed',
          );
      }
    });
    await deps.dispatcher.submitMany(toSubmit);
    result.enqueued += toSubmit.length;

    // Commit with the version the claim was stored at; whatever changed meanwhile (an outcome,
    // a pause) is re-read and the commit re-applied.
    const toCommit = claimed.filter((_, i) => perSub[i] !== undefined);
    const versions = await deps.subs.saveMany(
      toCommit.map((c) => ({
        sub: commitBilling(c.sub, c.token, c.plan.skipped, now) ?? c.sub,
        expectVersion: c.version,
      })),
    );
    await Promise.all(
      toCommit.map(async (c, i) => {
        let committed = versions[i] !== undefined;
        if (!committed) {
          const res = await deps.subs.mutate(c.sub.id, (sub) => {
            const next = commitBilling(sub, c.token, c.plan.skipped, now);
            return {
              decision: { ...(next ? { next } : {}), events: [] },
              value: next !== undefined,
            };
          });
          committed = res.found && res.value;
        }
        if (!committed) {
          result.contended += 1;
          return;
        }
        result.billed += 1;
        result.skipped += c.plan.skipped;
        if (c.plan.skipped > 0)
          log.warn(
            { subscriptionId: c.sub.id, skipped: c.plan.skipped },
            'catch-up exceeded CATCH_UP_MAX_PERIODS: the oldest missed periods are not billed',
          );
      }),
    );
  }
  if (result.due > 0) log.info({ now, ...result }, 'subscription tick');
  return result;
}
