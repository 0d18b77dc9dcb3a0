/**
 * What a tick decides for each due subscription (tick.ts runs it): the scheduled actions due
 * (rules 10, 12, lifecycle.ts), then the billing plan (rules 3, 4, 7, billing.ts) on the record
 * they leave, checking the intents of earlier open charges first (rule 9, holds.ts). The result
 * is a claim to store with compare-and-set, or a record to store instead (a hold, a scheduled
 * action, a rescore), each with its events in the same step.
 *
 * Records are read in one pipelined round trip, then the intents of their open charges (after
 * the records: a charge read unresolved was unresolved when the record was current), then all
 * writes in one pipelined round trip; a record that changed between the read and the write is
 * decided again on its own.
 */
import { randomUUID } from 'node:crypto';
import { settleUnreadable, UnreadableRecordError } from '../kernel/errors.ts';
import type { BillingEvent } from '../kernel/events.ts';
import type { IntentStore } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { claimBilling, planBilling, releaseClaim, type BillingPlan } from './billing.ts';
import { checkOpenCharges, type ChargeSnapshot } from './holds.ts';
import { enqueueDunningRetries } from './jobs.ts';
import { applyScheduled } from './lifecycle.ts';
import { SubscriptionContentionError, type SubscriptionStore } from './ports.ts';
import { billingHold, retryOf, type DunningRetry, type Subscription } from './record.ts';

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
  /** Tick only the subscriptions of this test clock (its own due index; test-clocks.ts). */
  testClock?: string;
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
  /** Scheduled actions applied (rules 10, 12): trial notices, resumes, cancels at period end. */
  scheduled: number;
  /** Subscriptions whose processing failed (logged; retried by a later tick). */
  failed: number;
}

export interface Claimed {
  /** The record as claimed (stored at `version`). */
  sub: Subscription;
  plan: Extract<BillingPlan, { kind: 'bill' }>;
  token: string;
  version: number;
}

/** A record to store instead of a claim: a hold, a scheduled action or a rescore. */
interface Write {
  sub: Subscription;
  events: BillingEvent[];
}

/** What the tick decided for one record. */
interface Decided {
  plan: BillingPlan;
  claimed?: Omit<Claimed, 'version'>;
  /** The record to store, with the claim when there is one. */
  write?: Write;
  /** Retries a scheduled resume re-armed, enqueued once the write is stored. */
  retries: DunningRetry[];
  /**
   * Retries an earlier resume re-armed (`rearmDunning` on the record read), enqueued before the
   * write that clears the mark is stored, so that no crash can clear it with them missing.
   */
  rearm: DunningRetry[];
  /** Scheduled actions in this decision. */
  scheduled: number;
  /** Not billed: held by an unresolved charge, or waiting for a failure to be applied. */
  held?: 'hold' | 'await';
}

/**
 * The retries of a record a resume left marked `rearmDunning` (record.ts): those of its open
 * dunning, under its resume count, unless it has been paused or canceled since; and the record
 * without the mark.
 */
function rearmOf(sub: Subscription): { sub: Subscription; rearm: DunningRetry[] } {
  if (sub.rearmDunning !== true) return { sub, rearm: [] };
  const { rearmDunning: _made, ...rest } = sub;
  const live = sub.status !== 'paused' && sub.status !== 'canceled';
  return { sub: rest, rearm: live ? sub.dunning.map((d) => retryOf(sub, d)) : [] };
}

/**
 * The record once the scheduled actions due at `now` are applied, with their events (and a
 * resume's mark turned into its retries, {@link rearmOf}).
 */
function scheduledAt(raw: Subscription, now: number) {
  const { sub, rearm } = rearmOf(raw);
  const d = applyScheduled(sub, now);
  return {
    sub: d.next ?? sub,
    events: d.events,
    retries: d.retries,
    rearm,
    /** A scheduled action was applied. */
    acted: d.next !== undefined,
    /** The record differs from the one read (an action, or the mark cleared). */
    changed: d.next !== undefined || sub !== raw,
  };
}

/**
 * The intents of the open charges of the records read for a tick (rule 9): `snapshot` by key
 * (undefined: the intent does not exist), and apart from it those this version cannot read.
 */
interface OpenCharges {
  snapshot: Map<string, ChargeSnapshot | undefined>;
  /**
   * Never in `snapshot`, where it would read as missing: a charge that may have moved money,
   * decided on as if it had never been created, would be billed again.
   */
  unreadable: Map<string, UnreadableRecordError>;
}

/**
 * The intents of the open charges of every record that plans to bill (rule 9), read after the
 * records and in parallel.
 */
async function readOpenCharges(
  deps: TickDeps,
  subs: readonly Subscription[],
  now: number,
): Promise<OpenCharges> {
  const keys: string[] = [];
  for (const raw of subs) {
    let sub: Subscription;
    try {
      sub = scheduledAt(raw, now).sub;
      if (sub.openCharges.length === 0) continue;
      if (planBilling(sub, now, { catchUpMax: deps.catchUpMaxPeriods }).kind !== 'bill') continue;
    } catch {
      // A record the rules cannot compute with: its decision fails the same way and is reported
      // there (decideOrReport).
      continue;
    }
    for (const c of sub.openCharges) keys.push(c.key);
  }
  const intents = await Promise.all(keys.map((k) => settleUnreadable(deps.intents.get(k))));
  const charges: OpenCharges = { snapshot: new Map(), unreadable: new Map() };
  keys.forEach((k, i) => {
    const intent = intents[i];
    if (intent instanceof UnreadableRecordError) charges.unreadable.set(k, intent);
    else
      charges.snapshot.set(
        k,
        intent && { state: intent.state, attempt: intent.attempt, updatedAt: intent.updatedAt },
      );
  });
  return charges;
}

/**
 * What to do with one record: its scheduled actions, then claim it, hold it, rescore it, or
 * leave it. `snapshot` holds the intents of its open charges, read after the record.
 */
function decideClaim(
  raw: Subscription,
  now: number,
  leaseMs: number,
  catchUpMax: number,
  snapshot: ReadonlyMap<string, ChargeSnapshot | undefined>,
): Decided {
  const s = scheduledAt(raw, now);
  const sub = s.sub;
  const scheduled = s.events.length > 0 || s.acted ? 1 : 0;
  const base = { retries: s.retries, rearm: s.rearm, scheduled };
  const plan = planBilling(sub, now, { catchUpMax });
  switch (plan.kind) {
    case 'bill': {
      let billable = sub;
      if (sub.openCharges.length > 0) {
        const check = checkOpenCharges(sub, snapshot, now);
        if (check.kind === 'hold')
          return {
            ...base,
            plan,
            held: 'hold',
            write: {
              sub: check.decision.next,
              events: [...s.events, ...check.decision.events],
            },
          };
        if (check.kind === 'await')
          return {
            ...base,
            plan,
            held: 'await',
            ...(s.changed ? { write: { sub, events: s.events } } : {}),
          };
        billable = check.sub;
      }
      const token = randomUUID();
      const claimed = claimBilling(billable, plan, { token, now, leaseMs });
      return {
        ...base,
        plan,
        claimed: { sub: claimed, plan, token },
        write: { sub: claimed, events: s.events },
      };
    }
    case 'busy':
      return { ...base, plan, ...(s.changed ? { write: { sub, events: s.events } } : {}) };
    case 'idle':
    case 'wait':
      // A scheduled action, or (without one) the due index disagreeing with the record (a claim
      // that expired with nothing left to bill; a live one is `busy`): storing the record
      // rescores it.
      return {
        ...base,
        plan,
        write: {
          sub: s.acted ? sub : sub.claim ? releaseClaim(sub, now) : { ...sub },
          events: s.events,
        },
      };
  }
}

/**
 * A due record the tick cannot read or compute with (another version's shape, a hand edit, a
 * time zone or date this runtime's calendar refuses), or whose open charge it cannot read (`err`
 * names that intent: its state is unknown, so the subscription is not decided on at all):
 * skipped, counted as failed and logged by subscription id (and the intent's key) with what is
 * wrong (never its content). It is left as it is, still due: every tick names it again until an
 * operator fixes it, and the other due subscriptions are billed meanwhile.
 */
function reportUnreadable(
  subscriptionId: string,
  err: UnreadableRecordError,
  log: Logger,
  result: TickResult,
): void {
  result.failed += 1;
  if (err.kind === 'intent')
    log.error(
      { subscriptionId, key: err.id, why: err.why },
      'open charge of a due subscription cannot be read by this version: the subscription is skipped (not billed on top of it); it stays due',
    );
  else
    log.error(
      { subscriptionId, why: err.why },
      'due subscription cannot be read or billed by this version: skipped; it stays due',
    );
}

/**
 * {@link decideClaim} for one record; undefined, reported ({@link reportUnreadable}), when an
 * open charge of it could not be read or the rules throw for it. The rules are pure: what throws
 * is a property of the record, not of Redis.
 */
function decideOrReport(
  raw: Subscription,
  now: number,
  leaseMs: number,
  deps: TickDeps,
  charges: OpenCharges,
  log: Logger,
  result: TickResult,
): Decided | undefined {
  const unreadable = raw.openCharges.find((c) => charges.unreadable.has(c.key));
  if (unreadable) {
    reportUnreadable(raw.id, charges.unreadable.get(unreadable.key)!, log, result);
    return undefined;
  }
  try {
    return decideClaim(raw, now, leaseMs, deps.catchUpMaxPeriods, charges.snapshot);
  } catch (err) {
    reportUnreadable(raw.id, UnreadableRecordError.of('subscription', raw.id, err), log, result);
    return undefined;
  }
}

function countPlan(decided: Decided, id: string, log: Logger, result: TickResult): void {
  result.scheduled += decided.scheduled;
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
 * Claims the due periods of `ids` (and applies their scheduled actions): one pipelined read, the
 * intents of their open charges, one pipelined compare-and-set write; a record that changed
 * between the read and the write is decided again on its own (re-read, its intents re-read).
 */
export async function claimAll(
  deps: TickDeps,
  ids: readonly string[],
  now: number,
  leaseMs: number,
  log: Logger,
  result: TickResult,
): Promise<Claimed[]> {
  const docs = (await deps.subs.readMany(ids)).flatMap((d) => {
    if (d instanceof UnreadableRecordError) {
      reportUnreadable(d.id, d, log, result);
      return [];
    }
    return d ? [d] : [];
  });
  const charges = await readOpenCharges(
    deps,
    docs.map((d) => d.sub),
    now,
  );
  const writes: { id: string; decided: Decided; write: Write; expectVersion: number }[] = [];
  docs.forEach((d) => {
    const decided = decideOrReport(d.sub, now, leaseMs, deps, charges, log, result);
    if (!decided) return;
    if (decided.write)
      writes.push({ id: d.sub.id, decided, write: decided.write, expectVersion: d.version });
    else countPlan(decided, d.sub.id, log, result);
  });
  // Before the writes that clear their marks (a crash in between leaves the marks: done again).
  await enqueueDunningRetries(
    deps.dispatcher,
    writes.flatMap((w) => w.decided.rearm),
    now,
  );
  const versions = await deps.subs.saveMany(
    writes.map((w) => ({ ...w.write, expectVersion: w.expectVersion })),
  );
  const retry: string[] = [];
  const out: Claimed[] = [];
  const retries: DunningRetry[] = [];
  writes.forEach((w, i) => {
    const version = versions[i];
    if (version === undefined) {
      // Changed under us: decided again from a fresh read, like a claim. A plain rescore that
      // lost its race needs nothing: the winner's write rescored the record.
      if (w.decided.claimed || w.decided.held !== undefined || w.decided.scheduled > 0)
        retry.push(w.id);
      return;
    }
    countPlan(w.decided, w.id, log, result);
    retries.push(...w.decided.retries);
    if (w.decided.claimed) out.push({ ...w.decided.claimed, version });
  });
  await enqueueDunningRetries(deps.dispatcher, retries, now);
  const again = await Promise.all(retry.map((id) => claimOne(deps, id, now, leaseMs, log, result)));
  return [...out, ...again.filter((c): c is Claimed => c !== undefined)];
}

/** Claims (or holds, or acts on) one subscription: read, read its open charges, decide, CAS. */
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
      const charges = await readOpenCharges(deps, [doc.sub], now);
      const decided = decideOrReport(doc.sub, now, leaseMs, deps, charges, log, result);
      if (!decided) return undefined;
      if (!decided.write) {
        countPlan(decided, id, log, result);
        return undefined;
      }
      await enqueueDunningRetries(deps.dispatcher, decided.rearm, now);
      const [version] = await deps.subs.saveMany([
        { ...decided.write, expectVersion: doc.version },
      ]);
      if (version === undefined) continue;
      countPlan(decided, id, log, result);
      await enqueueDunningRetries(deps.dispatcher, decided.retries, now);
      return decided.claimed ? { ...decided.claimed, version } : undefined;
    }
    throw new SubscriptionContentionError(id);
  } catch (err) {
    if (err instanceof UnreadableRecordError) {
      reportUnreadable(id, err, log, result);
      return undefined;
    }
    result.failed += 1;
    log.error(
      { subscriptionId: id, err: { name: (err as Error).name, message: (err as Error).message } },
      'could not claim a due subscription',
    );
    return undefined;
  }
}
