/**
 * The stream relay: turns every entry of `<prefix>:events` into one `notifications.deliver` job.
 *
 * It reads with XREADGROUP in the consumer group `notify` (one consumer per process) and
 * acknowledges an entry only after its job was added, so a crash between the two leaves the entry
 * in the group's pending list. Pending entries are taken back on start (this consumer's own, read
 * from id 0) and by a periodic XAUTOCLAIM of entries another consumer left idle (a process that
 * died). Re-adding is harmless: the job id is derived from the event id, and BullMQ ignores an add
 * whose id already exists, so a replay or an event appended twice collapses into one delivery.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../platform/logger.ts';
import { bullJobName, jobOptionsFor } from '../queues/catalog.ts';
import { storeKeys } from '../store/keys.ts';

/** The consumer group the relay reads `<prefix>:events` with. */
export const NOTIFY_GROUP = 'notify';

const JOB_NAME = bullJobName('notifications.deliver');

/**
 * The BullMQ job id of an event's delivery: one per event id, so duplicates collapse. BullMQ
 * refuses `:` and all-digit custom ids; percent-encoding removes the first (injectively, so two
 * event ids never share a job id) and the `ntf-` prefix the second.
 */
export function notificationJobId(eventId: string): string {
  return `ntf-${encodeURIComponent(eventId)}`;
}

/** A consumer name unique to this process, readable in XINFO CONSUMERS. */
export function defaultConsumerName(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export interface RelayHooks {
  /**
   * Called after a batch's jobs were added and before the batch is acknowledged. A throw leaves
   * the batch pending, exactly as a crash at that point would (tests use it for that).
   */
  afterEnqueue?: (streamIds: readonly string[]) => void | Promise<void>;
}

export interface RelayOptions {
  /** A connection of the app; the relay duplicates it for its blocking reads and closes that copy. */
  redis: Redis;
  prefix: string;
  /** The `notifications` queue the jobs are added to (not closed by the relay). */
  queue: Queue;
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

type Entry = [streamId: string, fields: string[] | null];

/**
 * The entries of an XREADGROUP reply on one stream, whatever the connection's protocol: RESP2
 * nests `[[key, entries]]`; RESP3 answers a map, which ioredis flattens to `[key, entries]`
 * (`replyMapping: 'legacy'`, its default) or gives as `{ key: entries }`. `null` (a block that
 * timed out) yields none.
 */
export function entriesOfRead(reply: unknown): Entry[] {
  let lists: unknown[] = [];
  if (Array.isArray(reply)) {
    lists =
      typeof reply[0] === 'string'
        ? reply.filter((_, i) => i % 2 === 1)
        : reply.map((s: unknown) => (Array.isArray(s) ? (s[1] as unknown) : undefined));
  } else if (reply !== null && typeof reply === 'object') {
    lists = Object.values(reply);
  }
  const out: Entry[] = [];
  for (const entries of lists) if (Array.isArray(entries)) out.push(...(entries as Entry[]));
  return out;
}

function fieldsOf(flat: string[]): Record<string, string> {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
  return f;
}

/**
 * Creates the consumer group (from id 0, so events appended before the first start are relayed
 * too) and the stream if either is missing.
 */
export async function ensureNotifyGroup(redis: Redis, prefix: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', storeKeys(prefix).events(), NOTIFY_GROUP, '0', 'MKSTREAM');
  } catch (err) {
    // BUSYGROUP is Redis's error code (the reply's first word) for "the group already exists".
    if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
  }
}

/** Starts the relay loop; resolves once the group exists and the loop runs. */
export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const key = storeKeys(opts.prefix).events();
  const consumer = opts.consumer ?? defaultConsumerName();
  const blockMs = opts.blockMs ?? 5_000;
  const batchSize = opts.batchSize ?? 100;
  const claimIdleMs = opts.claimIdleMs ?? 60_000;
  // Claiming more often than entries can become claimable only burns round trips.
  const claimIntervalMs = Math.max(1_000, Math.floor(claimIdleMs / 2));
  const retryDelayMs = opts.retryDelayMs ?? 1_000;
  const log = opts.logger.child({ component: 'notify-relay', consumer });

  // Its own connection: a blocked XREADGROUP would stall every other command on a shared one.
  const conn = opts.redis.duplicate();
  conn.on('error', (err: Error) => log.debug({ err: { message: err.message } }, 'redis error'));
  await ensureNotifyGroup(conn, opts.prefix);

  let stopped = false;
  let open = true;
  let inBlock = false;
  let wake: (() => void) | undefined;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  /** Adds one job per entry, then acknowledges them all. */
  const relay = async (entries: Entry[]) => {
    if (entries.length === 0) return;
    const jobs = [];
    for (const [streamId, flat] of entries) {
      // A pending entry trimmed from the stream comes back without fields: nothing to send.
      const eventId = flat ? fieldsOf(flat).id : undefined;
      if (eventId === undefined || eventId === '') {
        log.warn('stream entry without an event id (trimmed or foreign); skipped');
        continue;
      }
      jobs.push({
        name: JOB_NAME,
        data: { eventId, streamId },
        opts: {
          ...jobOptionsFor('notifications.deliver'),
          attempts: opts.attempts,
          jobId: notificationJobId(eventId),
        },
      });
    }
    if (jobs.length > 0) await opts.queue.addBulk(jobs);
    const ids = entries.map(([id]) => id);
    await opts.hooks?.afterEnqueue?.(ids);
    await conn.xack(key, NOTIFY_GROUP, ...ids);
    // Stream ids are not logged: the logger masks their 13+ digit runs as card numbers.
    log.debug({ count: ids.length }, 'events relayed');
  };

  const loop = async () => {
    // This consumer's own pending entries first: a restart under the same name resumes there.
    let ownPending = true;
    let nextClaimAt = 0;
    let claimCursor = '0-0';
    while (!stopped) {
      try {
        if (Date.now() >= nextClaimAt) {
          const reply = (await conn.call(
            'XAUTOCLAIM',
            key,
            NOTIFY_GROUP,
            consumer,
            claimIdleMs,
            claimCursor,
            'COUNT',
            batchSize,
          )) as [string, Entry[], ...unknown[]];
          const [next, claimed] = reply;
          if (claimed.length > 0) log.info({ count: claimed.length }, 'claimed pending events');
          await relay(claimed);
          claimCursor = next;
          if (next === '0-0') nextClaimAt = Date.now() + claimIntervalMs;
          continue;
        }
        if (ownPending) {
          // Id 0 (not '>') returns entries delivered to this consumer and not yet acknowledged.
          const entries = entriesOfRead(
            await conn.call(
              'XREADGROUP',
              'GROUP',
              NOTIFY_GROUP,
              consumer,
              'COUNT',
              batchSize,
              'STREAMS',
              key,
              '0',
            ),
          );
          if (entries.length === 0) ownPending = false;
          else await relay(entries);
          continue;
        }
        // No await between the loop's `stopped` check and here, so stop() sees `inBlock` right.
        inBlock = true;
        const reply = await conn.call(
          'XREADGROUP',
          'GROUP',
          NOTIFY_GROUP,
          consumer,
          'COUNT',
          batchSize,
          'BLOCK',
          blockMs,
          'STREAMS',
          key,
          '>',
        );
        inBlock = false;
        await relay(entriesOfRead(reply));
      } catch (err) {
        inBlock = false;
        if (stopped) break;
        log.warn(
          { err: { name: (err as Error).name, message: (err as Error).message } },
          'relay error; retrying',
        );
        // Whatever was read but not acknowledged is pending on this consumer: read it again.
        ownPending = true;
        await pause(retryDelayMs);
        if (stopped) break;
        // The stream (and with it the group) may have been deleted; recreate rather than spin.
        await ensureNotifyGroup(conn, opts.prefix).catch(() => undefined);
      }
    }
  };

  const running = loop();
  log.info({ blockMs, claimIdleMs }, 'notification relay started');

  return {
    consumer,
    isOpen: () => open,
    async stop() {
      if (!open) return;
      stopped = true;
      wake?.();
      // A blocked read returns only after `blockMs`; dropping the connection ends it now. An
      // entry it had just read stays pending and is relayed by the next start.
      if (inBlock) conn.disconnect();
      await running;
      if (conn.status !== 'end') await conn.quit().catch(() => conn.disconnect());
      open = false;
      log.info('notification relay stopped');
    },
  };
}
