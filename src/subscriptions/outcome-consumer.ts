/**
 * How recurring billing learns what happened to its charges: a consumer group (`subscriptions`)
 * on the events stream `<prefix>:events`, followed through the EventLog port. Payment events are
 * written by the intent transition script itself, so every outcome is there exactly once; this
 * applies the subscription rules to each (renewed / past_due / dunning / canceled, see
 * outcomes.ts; an unresolved payment holds billing, holds.ts) and acknowledges the entry only
 * after the change is stored.
 *
 * An unresolved event (`payment.pending`, `payment.requires_action`, `payment.needs_review`) is
 * checked against the intent, read after the subscription record: a hold is stored only for the
 * state the intent is in then, and with compare-and-set on the record read before it. A replayed
 * or overtaken event therefore never holds a payment that is already final: if it became final
 * after the intent was read, its outcome's write either comes after the hold (and lifts it) or
 * made the hold's compare-and-set fail (and the re-read finds it final). Entries left
 * unacknowledged by a crash are claimed again (XAUTOCLAIM) and re-applied: the rules are
 * idempotent for a replayed outcome. The retries a failure schedules run in dunning.ts.
 *
 * Events the stream's trim removed before this group read them (a consumer stopped while about a
 * million events were appended) are made up for from the intents ({@link resyncOpenCharges}).
 */
import { z } from 'zod';
import type { Clock } from '../kernel/clock.ts';
import { intentKeySchema } from '../kernel/ids.ts';
import { paymentEventFor, type BillingEvent } from '../kernel/events.ts';
import type { EventLog, IntentStore, StreamConsumer, StreamEntry } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { defaultConsumerName, fieldsOf } from '../infra/redis/stream-consumer.ts';
import { clockTimes } from './clock-runner.ts';
import { enqueueDunningRetries } from './jobs.ts';
import {
  decideOutcome,
  isUnresolved,
  OUTCOME_TYPES,
  readIntents,
  type PaymentOutcome,
} from './outcome-rules.ts';
import type { DunningPolicy } from './outcomes.ts';
import { SubscriptionContentionError, type SubscriptionStore } from './ports.ts';
import type { Decision, DunningRetry, Subscription } from './record.ts';

export type { PaymentOutcome } from './outcome-rules.ts';

/** The consumer group recurring billing reads the events stream with. */
export const SUBSCRIPTIONS_GROUP = 'subscriptions';

/** What applying payment outcomes needs. */
export interface ApplyDeps {
  subs: SubscriptionStore;
  /** Unresolved events are checked against the intent's current state before they hold billing. */
  intents: IntentStore;
  dispatcher: Dispatcher;
  logger: Logger;
  clock: Clock;
  dunning: DunningPolicy;
}

export interface OutcomeConsumerDeps extends ApplyDeps {
  /** The events stream; the consumer reads it on a connection of its own. */
  events: EventLog;
  /** Unique per process; defaults to host, pid and a random tail. */
  consumer?: string;
  /** Entries per read. Default 200. */
  batchSize?: number;
  /** How long a read blocks waiting for entries; also how long `stop()` may take. Default 1000. */
  blockMs?: number;
  /** Entries pending this long (a consumer died holding them) are claimed. Default 30 s. */
  claimIdleMs?: number;
}

/** A stream entry, as the transition script and EventLog write it. */
interface StreamEvent {
  streamId: string;
  type: string;
  data: unknown;
}

const paymentDataSchema = z.object({
  key: intentKeySchema,
  attempt: z.number().int().min(1),
  subscriptionId: z.string().min(1),
  origin: z.literal('subscription'),
  reason: z.string().optional(),
  /** payment.succeeded: the gateway returned a reusable authorization (kept sealed by payments). */
  hasAuthorization: z.boolean().optional(),
  // What the intent charged (subscription.renewed reports it). A malformed value is dropped, not
  // the outcome: the intent is read instead (outcome-rules.ts).
  amount: z.number().int().min(1).optional().catch(undefined),
  currency: z.string().min(1).optional().catch(undefined),
});

function toEvent([streamId, flat]: StreamEntry): StreamEvent {
  const fields = fieldsOf(flat);
  let data: unknown;
  try {
    data = JSON.parse(fields.data ?? '{}');
  } catch {
    data = undefined;
  }
  return { streamId, type: fields.type ?? '', data };
}

/** Which outcome an event reports for a subscription's charge, if any. */
function relevant(e: StreamEvent) {
  const kind = OUTCOME_TYPES.find((t) => t === e.type);
  if (kind === undefined) return undefined;
  const parsed = paymentDataSchema.safeParse(e.data);
  if (!parsed.success) return undefined;
  return { kind, ...parsed.data };
}

function logApplied(log: Logger, o: PaymentOutcome, sub: Subscription, d: Decision): void {
  const held = isUnresolved(o.kind)
    ? sub.openCharges.find((c) => c.key === o.key)?.hold
    : undefined;
  log.info(
    {
      subscriptionId: o.subscriptionId,
      key: o.key,
      attempt: o.attempt,
      status: sub.status,
      ...(o.reason !== undefined ? { reason: o.reason } : {}),
      ...(d.retries[0] ? { retryAt: d.retries[0].dueAt } : {}),
      ...(held ? { held: held.state } : {}),
    },
    o.kind === 'payment.succeeded'
      ? 'subscription renewed'
      : o.kind !== 'payment.failed'
        ? 'subscription billing held: a renewal is unresolved'
        : sub.status === 'canceled'
          ? 'subscription canceled: dunning exhausted'
          : 'subscription charge failed',
  );
}

/** The time `sub` lives on: its test clock's (in `clocks`), else the real one. */
function nowOf(deps: ApplyDeps, clocks: ReadonlyMap<string, number>, sub: Subscription): number {
  return (sub.testClock === undefined ? undefined : clocks.get(sub.testClock)) ?? deps.clock.now();
}

/** Retries still wanted by the final record (a later outcome in the batch may have closed one). */
function wanted(sub: Subscription, retries: readonly DunningRetry[]): DunningRetry[] {
  return retries.filter((r) => sub.dunning.some((d) => d.key === r.key && d.step === r.step));
}

/**
 * Applies one payment outcome to its subscription (compare-and-set, re-read on conflict; an
 * unresolved one re-reads its intent after each read of the record) and enqueues the retries it
 * implies.
 */
export async function applyPaymentOutcome(
  deps: ApplyDeps,
  outcome: PaymentOutcome,
  maxTries = 8,
): Promise<void> {
  const ctx = { subscriptionId: outcome.subscriptionId, key: outcome.key };
  for (let i = 0; i < maxTries; i++) {
    const current = await deps.subs.get(outcome.subscriptionId);
    if (!current) {
      deps.logger.warn(ctx, 'payment outcome for a subscription that does not exist');
      return;
    }
    // A subscription on a test clock lives on its clock's time (test-clocks.ts).
    const clocks = await clockTimes(deps.subs, [current.sub.testClock]);
    const now = nowOf(deps, clocks, current.sub);
    const intents = await readIntents(deps.intents, [outcome]);
    const d = decideOutcome(current.sub, outcome, now, deps.dunning, intents.get(outcome.key));
    if (d === undefined) {
      deps.logger.warn(ctx, 'payment outcome for an intent key that is not a subscription period');
      return;
    }
    let sub = current.sub;
    if (d.next) {
      const [version] = await deps.subs.saveMany([
        { sub: d.next, expectVersion: current.version, events: d.events },
      ]);
      if (version === undefined) continue;
      sub = d.next;
      logApplied(deps.logger, outcome, sub, d);
    }
    await enqueueDunningRetries(deps.dispatcher, wanted(sub, d.retries), now);
    return;
  }
  throw new SubscriptionContentionError(outcome.subscriptionId);
}

/**
 * Applies a batch of outcomes: one pipelined read of the subscriptions, each one's outcomes
 * folded in stream order, one pipelined compare-and-set write, one bulk enqueue of retries. A
 * subscription that changed under the batch is redone outcome by outcome. Returns, per outcome,
 * whether it is applied (a failed one stays pending in the stream and is retried).
 */
export async function applyPaymentOutcomes(
  deps: ApplyDeps,
  outcomes: readonly PaymentOutcome[],
): Promise<boolean[]> {
  const now = deps.clock.now();
  const bySub = new Map<string, number[]>();
  outcomes.forEach((o, i) =>
    bySub.set(o.subscriptionId, [...(bySub.get(o.subscriptionId) ?? []), i]),
  );
  const ids = [...bySub.keys()];
  const docs = await deps.subs.getMany(ids);
  const clocks = await clockTimes(
    deps.subs,
    docs.map((d) => d?.sub.testClock),
  );
  // After the records: an intent read unresolved here was unresolved when they were current.
  const intents = await readIntents(deps.intents, outcomes);
  const applied = outcomes.map(() => false);

  interface Folded {
    indexes: number[];
    sub: Subscription;
    version: number;
    events: BillingEvent[];
    retries: DunningRetry[];
    logs: [PaymentOutcome, Decision][];
  }
  const saves: Folded[] = [];
  const retries: DunningRetry[] = [];
  ids.forEach((id, n) => {
    const indexes = bySub.get(id) ?? [];
    const doc = docs[n];
    if (!doc) {
      deps.logger.warn(
        { subscriptionId: id },
        'payment outcome for a subscription that does not exist',
      );
      for (const i of indexes) applied[i] = true;
      return;
    }
    const f: Folded = {
      indexes,
      sub: doc.sub,
      version: doc.version,
      events: [],
      retries: [],
      logs: [],
    };
    let changed = false;
    for (const i of indexes) {
      const o = outcomes[i] as PaymentOutcome;
      const d = decideOutcome(
        f.sub,
        o,
        nowOf(deps, clocks, f.sub),
        deps.dunning,
        intents.get(o.key),
      );
      if (d === undefined) {
        deps.logger.warn(
          { subscriptionId: id, key: o.key },
          'payment outcome for an intent key that is not a subscription period',
        );
        continue;
      }
      if (d.next) {
        f.sub = d.next;
        changed = true;
        f.logs.push([o, d]);
      }
      f.events.push(...d.events);
      f.retries.push(...d.retries);
    }
    if (changed) saves.push(f);
    else {
      retries.push(...wanted(f.sub, f.retries));
      for (const i of indexes) applied[i] = true;
    }
  });

  const versions = await deps.subs.saveMany(
    saves.map((f) => ({ sub: f.sub, expectVersion: f.version, events: f.events })),
  );
  const redo: Folded[] = [];
  saves.forEach((f, n) => {
    if (versions[n] === undefined) {
      redo.push(f);
      return;
    }
    for (const [o, d] of f.logs) logApplied(deps.logger, o, f.sub, d);
    retries.push(...wanted(f.sub, f.retries));
    for (const i of f.indexes) applied[i] = true;
  });
  await enqueueDunningRetries(deps.dispatcher, retries, now);
  // Changed under us (a tick's commit, an action): one outcome at a time, in order.
  await Promise.all(
    redo.map(async (f) => {
      for (const i of f.indexes) {
        try {
          await applyPaymentOutcome(deps, outcomes[i] as PaymentOutcome);
          applied[i] = true;
        } catch (err) {
          deps.logger.error(
            {
              subscriptionId: outcomes[i]?.subscriptionId,
              key: outcomes[i]?.key,
              err: { name: (err as Error).name, message: (err as Error).message },
            },
            'could not apply a payment outcome; will retry',
          );
          // Later outcomes of the subscription wait too, so they never apply out of order.
          return;
        }
      }
    }),
  );
  return applied;
}

/** Subscriptions read per page by {@link resyncOpenCharges}. */
const RESYNC_PAGE = 500;

/**
 * After the stream's trim removed events before this group read them: applies, to every
 * subscription, the outcome each of its open charges' intents already reports, as its event would
 * have (the event is written by the same step as the state, so the state says what the lost event
 * said or something later). A charge whose outcome is applied is no longer open, and the rules are
 * idempotent for an outcome applied before, so this only makes up for what was lost: a lost
 * `payment.failed` left dunning unstarted and billing waiting on that charge for good. Returns how
 * many subscriptions it went through and how many outcomes it applied; throws (to be tried again)
 * if one could not be applied.
 */
export async function resyncOpenCharges(
  deps: ApplyDeps,
): Promise<{ subscriptions: number; outcomes: number }> {
  let after: string | undefined;
  const out = { subscriptions: 0, outcomes: 0 };
  for (;;) {
    const ids = await deps.subs.listIds({
      ...(after !== undefined ? { after } : {}),
      limit: RESYNC_PAGE,
    });
    if (ids.length === 0) break;
    after = ids[ids.length - 1];
    out.subscriptions += ids.length;
    const keys = (await deps.subs.getMany(ids)).flatMap((d) =>
      d ? d.sub.openCharges.map((c) => c.key) : [],
    );
    const intents = await Promise.all(keys.map((k) => deps.intents.get(k)));
    const outcomes: PaymentOutcome[] = [];
    for (const i of intents) {
      if (!i || i.subscriptionId === undefined) continue;
      // The outcome the payment event of its state reports, when it is one this consumer reads.
      const event = paymentEventFor(i.state);
      const kind = OUTCOME_TYPES.find((t) => t === event);
      if (!kind) continue;
      outcomes.push({
        kind,
        subscriptionId: i.subscriptionId,
        key: i.key,
        attempt: i.attempt,
        ...(i.reason !== undefined ? { reason: i.reason } : {}),
        ...(kind === 'payment.succeeded'
          ? { hasAuthorization: i.authorizationSealed !== undefined }
          : {}),
        amount: i.amount,
        currency: i.currency,
      });
    }
    if (outcomes.length > 0) {
      const applied = await applyPaymentOutcomes(deps, outcomes);
      out.outcomes += applied.filter(Boolean).length;
      if (applied.some((ok) => !ok)) throw new Error('some outcomes could not be applied');
    }
    if (ids.length < RESYNC_PAGE) break;
  }
  return out;
}

/**
 * Starts the consumer: creates the group if needed (from the start of the stream, so nothing
 * written before the first start is missed), claims entries a dead consumer left pending, then
 * reads new entries until stopped.
 */
export function startSubscriptionOutcomes(deps: OutcomeConsumerDeps): Promise<StreamConsumer> {
  const consumer = deps.consumer ?? defaultConsumerName();
  const blockMs = deps.blockMs ?? 1_000;
  const log = deps.logger.child({ component: 'subscription-outcomes', consumer });

  const handle = async (
    entries: StreamEntry[],
    ack: (ids: readonly string[]) => Promise<void>,
  ): Promise<void> => {
    type Item = { streamId: string; outcome: NonNullable<ReturnType<typeof relevant>> };
    const done: string[] = [];
    const bySub = new Map<string, Item[]>();
    for (const entry of entries) {
      const e = toEvent(entry);
      const outcome = relevant(e);
      if (!outcome) {
        done.push(e.streamId);
        continue;
      }
      const list = bySub.get(outcome.subscriptionId) ?? [];
      list.push({ streamId: e.streamId, outcome });
      bySub.set(outcome.subscriptionId, list);
    }
    const apply = async (items: Item[]): Promise<void> => {
      const applied = await applyPaymentOutcomes(
        deps,
        items.map((x) => x.outcome),
      );
      applied.forEach((ok, i) => {
        const streamId = items[i]?.streamId;
        if (ok && streamId !== undefined) done.push(streamId);
      });
    };
    const failed = (err: unknown, subscriptionId?: string) =>
      // Left pending: claimed again and retried after `claimIdleMs`.
      log.error(
        {
          ...(subscriptionId !== undefined ? { subscriptionId } : {}),
          err: { name: (err as Error).name, message: (err as Error).message },
        },
        'could not apply payment outcomes; will retry',
      );
    try {
      await apply([...bySub.values()].flat());
    } catch (err) {
      if (bySub.size <= 1) failed(err, [...bySub.keys()][0]);
      // One subscription whose outcome cannot be applied must not hold the others back (they
      // would be claimed and fail together again): each subscription's outcomes alone, in order.
      // Applying an outcome again is a no-op, so what the failed call stored is not redone.
      else
        for (const [subscriptionId, items] of bySub) {
          try {
            await apply(items);
          } catch (e) {
            failed(e, subscriptionId);
          }
        }
    }
    await ack(done);
  };

  return deps.events.consume({
    group: SUBSCRIPTIONS_GROUP,
    consumer,
    logger: log,
    label: 'subscription outcome consumer',
    handle,
    blockMs,
    batchSize: deps.batchSize ?? 200,
    claimIdleMs: deps.claimIdleMs ?? 30_000,
    retryDelayMs: Math.min(blockMs, 1_000),
    onTrimmed: async () => {
      const r = await resyncOpenCharges(deps);
      log.warn(
        r,
        "subscriptions' open charges applied from their intents after events were trimmed unread",
      );
    },
  });
}
