/**
 * The stream relay: turns every entry of `<prefix>:events` into one `notifications.deliver` job,
 * which carries the entry's `type`, `at` and `data`: its delivery and every retry build the body
 * from the job, so the stream's MAXLEN trim cannot take an event from a job waiting to retry.
 *
 * It reads with XREADGROUP in the consumer group `notify` (one consumer per process) and
 * acknowledges an entry only after its job was added, so a crash between the two leaves the entry
 * in the group's pending list. Pending entries are taken back on start (this consumer's own, read
 * from id 0) and by a periodic XAUTOCLAIM of entries another consumer left idle (a process that
 * died). Re-adding is harmless: the job id is derived from the event id, and BullMQ ignores an add
 * whose id already exists, so a replay or an event appended twice collapses into one delivery.
 */
import type { EventLog, StreamEntry } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher, JobToAdd } from '../infra/queues/dispatcher.ts';
import { defaultConsumerName, fieldsOf } from '../infra/redis/stream-consumer.ts';

/** The consumer group the relay reads `<prefix>:events` with. */
export const NOTIFY_GROUP = 'notify';

/**
 * The BullMQ job id of an event's delivery: one per event id, so duplicates collapse. BullMQ
 * refuses `:` and all-digit custom ids; percent-encoding removes the first (injectively, so two
 * event ids never share a job id) and the `ntf-` prefix the second.
 */
export function notificationJobId(eventId: string): string {
  return `ntf-${encodeURIComponent(eventId)}`;
}

export interface RelayHooks {
  /**
   * Called after a batch's jobs were added and before the batch is acknowledged. A throw leaves
   * the batch pending, exactly as a crash at that point would (tests use it for that).
   */
  afterEnqueue?: (streamIds: readonly string[]) => void | Promise<void>;
}

export interface RelayOptions {
  /** The events stream; the relay's consumer reads it on a connection of its own. */
  events: EventLog;
  /** Adds the `notifications.deliver` jobs. */
  dispatcher: Dispatcher;
  logger: Logger;
  /** BullMQ attempts of each job: one first try plus one per retry-schedule entry. */
  attempts: number;
  /** Default {@link defaultConsumerName}. A stable name lets a restart re-read its own pending entries. */
  consumer?: string;
  /** How long one XREADGROUP blocks waiting for new entries. Default 5 000. */
  blockMs?: number;
  /** Entries per read. Default 100. */
  batchSize?: number;
  /**
   * Another consumer's pending entry idle this long is claimed (its process presumably died).
   * Default 60 000; 0 claims every pending entry at start.
   */
  claimIdleMs?: number;
  /** Wait after an error (Redis down, queue add failed) before trying again. Default 1 000. */
  retryDelayMs?: number;
  hooks?: RelayHooks;
}

/** A running relay. */
export interface Relay {
  readonly consumer: string;
  /** False once {@link Relay.stop} finished. */
  isOpen(): boolean;
  /** Interrupts a blocking read, lets an in-progress batch finish, and closes the connection. */
  stop(): Promise<void>;
}

/**
 * Creates the consumer group (from id 0, so events appended before the first start are relayed
 * too) and the stream if either is missing.
 */
export function ensureNotifyGroup(events: EventLog): Promise<void> {
  return events.ensureGroup(NOTIFY_GROUP);
}

/** Starts the relay loop; resolves once the group exists and the loop runs. */
export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const consumer = opts.consumer ?? defaultConsumerName();
  const log = opts.logger.child({ component: 'notify-relay', consumer });

  /** Adds one job per entry, then acknowledges them all. */
  const relay = async (entries: StreamEntry[], ack: (ids: readonly string[]) => Promise<void>) => {
    const jobs: JobToAdd<'notifications.deliver'>[] = [];
    const attempts = opts.attempts;
    for (const [streamId, flat] of entries) {
      // A pending entry trimmed from the stream comes back without fields: nothing to send.
      const { id: eventId, type, at, data } = fieldsOf(flat);
      if (eventId === undefined || eventId === '') {
        log.warn('stream entry without an event id (trimmed or foreign); skipped');
        continue;
      }
      // Every writer of the stream sets all four fields; a foreign entry lacking one is read
      // from the stream at delivery, as before, and shaped the same way.
      const event =
        type !== undefined && at !== undefined && data !== undefined
          ? { event: { type, at, data } }
          : {};
      jobs.push({
        data: { eventId, streamId, ...event },
        jobId: notificationJobId(eventId),
        attempts,
      });
    }
    await opts.dispatcher.addMany('notifications.deliver', jobs);
    const ids = entries.map(([id]) => id);
    await opts.hooks?.afterEnqueue?.(ids);
    await ack(ids);
    // Stream ids are not logged: the logger masks their 13+ digit runs as card numbers.
    log.debug({ count: ids.length }, 'events relayed');
  };

  return opts.events.consume({
    group: NOTIFY_GROUP,
    consumer,
    logger: log,
    label: 'notification relay',
    handle: relay,
    // Every payment event, of every intent shard (their ids carry the shard).
    allShards: true,
    blockMs: opts.blockMs ?? 5_000,
    batchSize: opts.batchSize ?? 100,
    claimIdleMs: opts.claimIdleMs ?? 60_000,
    retryDelayMs: opts.retryDelayMs ?? 1_000,
  });
}
