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
 * finishes the job.
 */
import { randomUUID } from 'node:crypto';
import type { Intent, IntentDraft } from '../kernel/payment.ts';
import type { IntentStore } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import {
  claimBilling,
  commitBilling,
  planBilling,
  releaseClaim,
  type BillingPlan,
} from './billing.ts';
import { periodKey } from './periods.ts';
import type { SubscriptionStore } from './ports.ts';
import type { Subscription } from './record.ts';

/** How long a tick's claim on a subscription holds before another tick may take it over. */
export const DEFAULT_CLAIM_LEASE_MS = 5 * 60_000;
const DEFAULT_CHUNK = 500;
const DEFAULT_MAX_PER_TICK = 100_000;

export interface TickDeps {
  subs: SubscriptionStore;
  intents: IntentStore;
  dispatcher: Dispatcher;
  logger: Logger;
  /** `CATCH_UP_MAX_PERIODS`: at most this many periods per subscription per catch-up. */
  catchUpMaxPeriods: number;
  claimLeaseMs?: number;
  /** Subscriptions read from the due index per round trip. Default 500. */
  chunkSize?: number;
  /** Upper bound on subscriptions one tick handles; the rest wait for the next. Default 100 000. */
  maxPerTick?: number;
}

export interface TickResult {
  /** Due subscriptions looked at. */
  due: number;
  /** Subscriptions whose due periods this tick billed. */
  billed: number;
  /** Intents created (a period whose intent already existed is not counted). */
  created: number;
  /** Charge jobs handed to BullMQ (including re-adds that collapsed into an existing job). */
  enqueued: number;
  /** Periods skipped because a catch-up exceeded its cap. */
  skipped: number;
  /** Subscriptions another tick held or changed under us. */
  contended: number;
  /** Subscriptions whose processing failed (logged; retried by a later tick). */
  failed: number;
}

interface Claimed {
  /** The record as claimed (stored at `version`). */
  sub: Subscription;
  plan: Extract<BillingPlan, { kind: 'bill' }>;
  token: string;
  version: number;
}

function draftFor(sub: Subscription, n: number): IntentDraft {
  return {
    key: periodKey(sub, n),
    type: 'charge',
    origin: 'subscription',
    amount: sub.amount,
    currency: sub.currency,
    subscriptionId: sub.id,
    payee: {
      kind: 'charge',
      email: sub.customerEmail,
      // Sealed with the same DATA_ENCRYPTION_KEY: copied as is, never opened here.
      cardTokenSealed: sub.cardTokenSealed,
      narration: `subscription ${sub.id}`,
    },
    ...(Object.keys(sub.metadata).length > 0 ? { meta: sub.metadata } : {}),
  };
}

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
    failed: 0,
  };
  const seen = new Set<string>();

  while (seen.size < maxPerTick) {
    const ids = await deps.subs.dueIds(now, Math.min(chunkSize, maxPerTick - seen.size));
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
            made.push(await deps.intents.create(draftFor(c.sub, n), now));
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

/**
 * Claims the due periods of `ids`: one pipelined read, one pipelined compare-and-set write; a
 * record that changed between the two is claimed again on its own (re-read, re-planned).
 */
async function claimAll(
  deps: TickDeps,
  ids: readonly string[],
  now: number,
  leaseMs: number,
  log: Logger,
  result: TickResult,
): Promise<Claimed[]> {
  const docs = await deps.subs.getMany(ids);
  const attempts: Claimed[] = [];
  const rescore: { sub: Subscription; expectVersion: number }[] = [];
  docs.forEach((d) => {
    if (!d) return;
    const decided = decideClaim(d.sub, now, leaseMs, deps.catchUpMaxPeriods);
    if (decided.claimed) attempts.push({ ...decided.claimed, version: d.version });
    else if (decided.rescore) rescore.push({ sub: decided.rescore, expectVersion: d.version });
    else if (decided.plan.kind === 'busy') result.contended += 1;
  });
  const [versions] = await Promise.all([
    deps.subs.saveMany(attempts.map((a) => ({ sub: a.sub, expectVersion: a.version }))),
    deps.subs.saveMany(rescore),
  ]);
  const out = await Promise.all(
    attempts.map(async (a, i) => {
      const version = versions[i];
      if (version !== undefined) return { ...a, version };
      return claimOne(deps, a.sub.id, now, leaseMs, log, result);
    }),
  );
  return out.filter((c): c is Claimed => c !== undefined);
}

/** What to do with one record: claim it, rescore it, or leave it. */
function decideClaim(
  sub: Subscription,
  now: number,
  leaseMs: number,
  catchUpMax: number,
): {
  plan: BillingPlan;
  claimed?: Omit<Claimed, 'version'>;
  rescore?: Subscription;
} {
  const plan = planBilling(sub, now, { catchUpMax });
  switch (plan.kind) {
    case 'bill': {
      const token = randomUUID();
      return {
        plan,
        claimed: { sub: claimBilling(sub, plan, { token, now, leaseMs }), plan, token },
      };
    }
    case 'busy':
      return { plan };
    case 'idle':
    case 'wait':
      // Only reachable when the due index disagrees with the record (a claim that expired with
      // nothing left to bill): storing the record again rescores it.
      return { plan, rescore: sub.claim ? releaseClaim(sub, now) : { ...sub } };
  }
}

async function claimOne(
  deps: TickDeps,
  id: string,
  now: number,
  leaseMs: number,
  log: Logger,
  result: TickResult,
): Promise<Claimed | undefined> {
  try {
    let claimed: Omit<Claimed, 'version'> | undefined;
    let plan: BillingPlan | undefined;
    const res = await deps.subs.mutate(id, (sub) => {
      const decided = decideClaim(sub, now, leaseMs, deps.catchUpMaxPeriods);
      claimed = decided.claimed;
      plan = decided.plan;
      const next = decided.claimed?.sub ?? decided.rescore;
      return { decision: { ...(next ? { next } : {}), events: [] }, value: undefined };
    });
    if (!res.found) return undefined;
    if (plan?.kind === 'busy') result.contended += 1;
    return claimed ? { ...claimed, version: res.version } : undefined;
  } catch (err) {
    result.failed += 1;
    log.error(
      { subscriptionId: id, err: { name: (err as Error).name, message: (err as Error).message } },
      'could not claim a due subscription',
    );
    return undefined;
  }
}
