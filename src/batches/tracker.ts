/**
 * The batch tracker: keeps each batch's counts by state, money per currency and completion.
 *
 * Counts are kept incrementally by a consumer (group `batches`) of the `<prefix>:events` stream:
 * every payment event of a batch row moves that row between the batch's counters in one atomic
 * step (BatchStore.applyEvents), O(1) per event, and the step that makes the last row final also
 * publishes `batch.completed` — once, because only the `queued → completed` change publishes it.
 * Recomputing from the intents instead would cost O(rows) per status query and leave completion
 * with nobody to notice it; the events already say exactly what changed.
 *
 * The step acknowledges the entries it applied, atomically with applying them, so an entry is
 * counted exactly when it leaves the group's pending list. Events the stream's trim removed before
 * the group read them (a tracker stopped while about a million events were appended) are made up
 * for: the rows of every running batch are counted from their intents' state
 * (BatchStore.resyncRunning), so such a batch still completes. The tracker runs with the worker role;
 * any number of replicas share the group. Redelivered or late events are harmless: a row
 * remembers the stream id it was last counted at.
 */
import { z } from 'zod';
import type { Clock } from '../kernel/clock.ts';
import type { EventLog, StreamConsumer, StreamEntry } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import { defaultConsumerName } from '../infra/redis/stream-consumer.ts';
import { TRACKED_STATES, type BatchRowEvent, type BatchStore } from './ports.ts';

/** The consumer group the tracker reads `<prefix>:events` with. */
export const BATCH_GROUP = 'batches';

/** The ports the tracker works with. */
export interface BatchTrackerDeps {
  batches: BatchStore;
  events: EventLog;
  clock: Clock;
  logger: Logger;
}

/** Tracker knobs. */
export interface BatchTrackerOptions {
  /** Default: host, pid and a random tail. */
  consumer?: string;
  /** How long one XREADGROUP blocks. Default 2 000. */
  blockMs?: number;
  /** Entries per read. Default 500. */
  batchSize?: number;
  /** Another consumer's entry pending this long is claimed (its process died). Default 60 000. */
  claimIdleMs?: number;
  /** Wait after an error before reading again. Default 1 000. */
  retryDelayMs?: number;
}

/** A running tracker. */
export type BatchTracker = StreamConsumer;

const rowEventData = z.object({
  key: z.string().min(1),
  batchId: z.string().min(1),
  state: z.enum(TRACKED_STATES),
});

/** The batch-row event in a stream entry, if it is one. */
function rowEvent(entry: StreamEntry): BatchRowEvent | undefined {
  const [streamId, flat] = entry;
  if (!flat) return undefined;
  let type: string | undefined;
  let data: string | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i] === 'type') type = flat[i + 1];
    else if (flat[i] === 'data') data = flat[i + 1];
  }
  // Cheap filters first: most events of a busy stream are not batch rows.
  if (type === undefined || !type.startsWith('payment.') || data === undefined) return undefined;
  if (!data.includes('"batchId"')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  const d = rowEventData.safeParse(parsed);
  if (!d.success) return undefined;
  return { streamId, intentKey: d.data.key, batchId: d.data.batchId, state: d.data.state };
}

/**
 * Starts the batch tracker (worker role): counts batch-row payment events into their batches and
 * completes batches. Resolves once the group exists and the loop runs.
 */
export async function startBatchTracker(
  deps: BatchTrackerDeps,
  opts: BatchTrackerOptions = {},
): Promise<BatchTracker> {
  const consumer = opts.consumer ?? defaultConsumerName();
  const log = deps.logger.child({ component: 'batch-tracker', consumer });

  /**
   * Applies the entries (acknowledging them in the same step). When the store refuses the step,
   * finds the entry it refuses, so one bad entry does not hold back every batch behind it: that
   * one is logged and acknowledged unapplied, the others are applied.
   */
  const apply = async (
    entries: StreamEntry[],
    ack: (ids: readonly string[]) => Promise<void>,
  ): Promise<void> => {
    const events: BatchRowEvent[] = [];
    for (const entry of entries) {
      const e = rowEvent(entry);
      if (e) events.push(e);
    }
    const r = await deps.batches.applyEvents(
      BATCH_GROUP,
      events,
      entries.map(([id]) => id),
      deps.clock.now(),
    );
    if (r.ok) {
      for (const batchId of r.completed) log.info({ batchId }, 'batch completed');
      return;
    }
    const [only] = entries;
    if (entries.length > 1 || only === undefined) {
      for (const entry of entries) await apply([entry], ack);
      return;
    }
    const e = rowEvent(only);
    log.error(
      { batchId: e?.batchId, key: e?.intentKey, err: { message: r.refused } },
      'batch event refused by Redis; skipped',
    );
    await ack([only[0]]);
  };

  return deps.events.consume({
    group: BATCH_GROUP,
    consumer,
    logger: log,
    label: 'batch tracker',
    handle: apply,
    blockMs: opts.blockMs ?? 2_000,
    batchSize: opts.batchSize ?? 500,
    claimIdleMs: opts.claimIdleMs ?? 60_000,
    retryDelayMs: opts.retryDelayMs ?? 1_000,
    // Events trimmed before this group read them: the rows they moved are counted from their
    // intents instead, or a running batch whose last rows' events were lost never completes.
    onTrimmed: async () => {
      const r = await deps.batches.resyncRunning(deps.clock.now());
      for (const batchId of r.completed) log.info({ batchId }, 'batch completed');
      log.warn(
        { batches: r.batches, rows: r.rows, completed: r.completed.length },
        'running batches counted again from their intents after events were trimmed unread',
      );
    },
  });
}
