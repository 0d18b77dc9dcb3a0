/**
 * (Just over 400 lines: a tick's claim, hold check, intent creation and commit share the claim
 * token and the per-tick result; splitting them would pass that state between files. The next
 * change here should move the hold check out, beside holds.ts.)
 *
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
 *
 * Before billing on top of earlier charges that have no final outcome applied yet (the record's
 * `openCharges`), the tick reads their intents, after the records (rule 9, holds.ts): one that is
 * `unknown`, `pending`, `requires_action` or `needs_review` holds the subscription's billing
 * instead (stored with its `subscription.billing_held` event, compare-and-set), so no period is
 * charged on top of a payment that may have moved money. Usually there is nothing to read: a
 * period's outcome is applied long before the next period is due.
 */
import { randomUUID } from 'node:crypto';
import type { BillingEvent } from '../kernel/events.ts';
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
import { checkOpenCharges, type ChargeSnapshot } from './holds.ts';
import { periodKey } from './periods.ts';
import { SubscriptionContentionError, type SubscriptionStore } from './ports.ts';
import { billingHold, type Subscription } from './record.ts';

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
  /**
   * Subscriptions not billed because an earlier charge is unresolved (now held, rule 9) or failed
   * without its outcome applied yet (looked at again next tick).
   */
  held: number;
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
    held: 0,
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
 * The intents of the open charges of every record that plans to bill (rule 9), read after the
 * records and in parallel. Undefined: the intent does not exist.
 */
async function readOpenCharges(
  deps: TickDeps,
  subs: readonly Subscription[],
  now: number,
  catchUpMax: number,
): Promise<Map<string, ChargeSnapshot | undefined>> {
  const keys: string[] = [];
  for (const sub of subs) {
    if (sub.openCharges.length === 0) continue;
    if (planBilling(sub, now, { catchUpMax }).kind !== 'bill') continue;
    for (const c of sub.openCharges) keys.push(c.key);
  }
  const intents = await Promise.all(keys.map((k) => deps.intents.get(k)));
  return new Map(
    keys.map((k, i) => {
      const intent = intents[i];
      return [
        k,
        intent && { state: intent.state, attempt: intent.attempt, updatedAt: intent.updatedAt },
      ];
    }),
  );
}

/**
 * Claims the due periods of `ids`: one pipelined read, the intents of their open charges, one
 * pipelined compare-and-set write; a record that changed between the read and the write is
 * claimed again on its own (re-read, its intents re-read, re-planned).
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
  const snapshot = await readOpenCharges(
    deps,
    docs.flatMap((d) => (d ? [d.sub] : [])),
    now,
    deps.catchUpMaxPeriods,
  );
  const attempts: Claimed[] = [];
  const writes: { id: string; decided: Decided; write: Write; expectVersion: number }[] = [];
  docs.forEach((d) => {
    if (!d) return;
    const decided = decideClaim(d.sub, now, leaseMs, deps.catchUpMaxPeriods, snapshot);
    if (decided.claimed) attempts.push({ ...decided.claimed, version: d.version });
    else if (decided.write)
      writes.push({ id: d.sub.id, decided, write: decided.write, expectVersion: d.version });
    else countPlan(decided, d.sub.id, log, result);
  });
  const [versions, written] = await Promise.all([
    deps.subs.saveMany(attempts.map((a) => ({ sub: a.sub, expectVersion: a.version }))),
    deps.subs.saveMany(writes.map((w) => ({ ...w.write, expectVersion: w.expectVersion }))),
  ]);
  const retry: string[] = [];
  writes.forEach((w, i) => {
    if (written[i] !== undefined) countPlan(w.decided, w.id, log, result);
    // A hold that lost its compare-and-set is decided again from a fresh read, like a claim.
    else if (w.decided.held !== undefined) retry.push(w.id);
  });
  const out: Claimed[] = [];
  attempts.forEach((a, i) => {
    const version = versions[i];
    if (version !== undefined) out.push({ ...a, version });
    else retry.push(a.sub.id);
  });
  const again = await Promise.all(retry.map((id) => claimOne(deps, id, now, leaseMs, log, result)));
  return [...out, ...again.filter((c): c is Claimed => c !== undefined)];
}

/** A record to store instead of a claim: a hold (with its event), or a rescore. */
interface Write {
  sub: Subscription;
  events: BillingEvent[];
}

/** What the tick decided for one record. */
interface Decided {
  plan: BillingPlan;
  claimed?: Omit<Claimed, 'version'>;
  write?: Write;
  /** Not billed: held by an unresolved charge, or waiting for a failure to be applied. */
  held?: 'hold' | 'await';
}

function countPlan(decided: Decided, id: string, log: Logger, result: TickResult): void {
  if (decided.plan.kind === 'busy') result.contended += 1;
  if (decided.held === undefined) return;
  result.held += 1;
  const hold = decided.write && billingHold(decided.write.sub);
  if (hold)
    log.info(
      { subscriptionId: id, key: hold.key, attempt: hold.hold.attempt, state: hold.hold.state },
      'subscription billing held: an earlier renewal is unresolved',
    );
  else
    log.debug(
      { subscriptionId: id },
      'subscription not billed: a failed renewal is not applied yet; next tick looks again',
    );
}

/**
 * What to do with one record: claim it, hold it, rescore it, or leave it. `snapshot` holds the
 * intents of its open charges, read after the record (readOpenCharges).
 */
function decideClaim(
  sub: Subscription,
  now: number,
  leaseMs: number,
  catchUpMax: number,
  snapshot: ReadonlyMap<string, ChargeSnapshot | undefined>,
): Decided {
  const plan = planBilling(sub, now, { catchUpMax });
  switch (plan.kind) {
    case 'bill': {
      let billable = sub;
      if (sub.openCharges.length > 0) {
        const check = checkOpenCharges(sub, snapshot, now);
        if (check.kind === 'hold')
          return {
            plan,
            held: 'hold',
            write: { sub: check.decision.next, events: check.decision.events },
          };
        if (check.kind === 'await') return { plan, held: 'await' };
        billable = check.sub;
      }
      const token = randomUUID();
      return {
        plan,
        claimed: { sub: claimBilling(billable, plan, { token, now, leaseMs }), plan, token },
      };
    }
    case 'busy':
      return { plan };
    case 'idle':
    case 'wait':
      // Only reachable when the due index disagrees with the record (a claim that expired with
      // nothing left to bill): storing the record again rescores it.
      return {
        plan,
        write: { sub: sub.claim ? releaseClaim(sub, now) : { ...sub }, events: [] },
      };
  }
}

/** Claims (or holds) one subscription: read, read its open charges, decide, compare-and-set. */
async function claimOne(
  deps: TickDeps,
  id: string,
  now: number,
  leaseMs: number,
  log: Logger,
  result: TickResult,
  maxTries = 8,
): Promise<Claimed | undefined> {
  try {
    for (let i = 0; i < maxTries; i++) {
      const doc = await deps.subs.get(id);
      if (!doc) return undefined;
      const snapshot = await readOpenCharges(deps, [doc.sub], now, deps.catchUpMaxPeriods);
      const decided = decideClaim(doc.sub, now, leaseMs, deps.catchUpMaxPeriods, snapshot);
      const save = decided.claimed ? { sub: decided.claimed.sub, events: [] } : decided.write;
      if (!save) {
        countPlan(decided, id, log, result);
        return undefined;
      }
      const [version] = await deps.subs.saveMany([
        { sub: save.sub, expectVersion: doc.version, events: save.events },
      ]);
      if (version === undefined) continue;
      countPlan(decided, id, log, result);
      return decided.claimed ? { ...decided.claimed, version } : undefined;
    }
    throw new SubscriptionContentionError(id);
  } catch (err) {
    result.failed += 1;
    log.error(
      { subscriptionId: id, err: { name: (err as Error).name, message: (err as Error).message } },
      'could not claim a due subscription',
    );
    return undefined;
  }
}
