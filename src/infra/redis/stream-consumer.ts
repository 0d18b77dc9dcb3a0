/**
 * One consumer-group reader of a Redis stream, shared by everything that follows
 * `<prefix>:events` (the notification relay, the batch tracker, the subscription outcome
 * consumer). The handler acknowledges what it is done with; whatever it leaves unacknowledged
 * stays in the group's pending list and is read again, so a crash at any instant loses nothing:
 *
 * - on start, and after any error, this consumer's own pending entries (read from id 0);
 * - every `claimIdleMs / 2` (at least every second), XAUTOCLAIM of entries idle for `claimIdleMs`,
 *   whoever holds them (a process that died, or this one's own entries a handler left pending);
 * - otherwise new entries (`>`), blocking up to `blockMs`.
 *
 * The reader blocks on a connection of its own (a blocked XREADGROUP would stall every other
 * command on a shared one); `stop()` drops it to end a block at once, and a half-read batch stays
 * pending for the next start.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Log } from '../../kernel/log.ts';
import type { StreamConsumer, StreamEntry } from '../../kernel/ports.ts';

export type { StreamConsumer, StreamEntry };

export interface StreamConsumerOptions {
  /** A dedicated connection; the consumer owns it: it blocks on it and closes it on stop. */
  connection: Redis;
  stream: string;
  group: string;
  /** Unique per process; a stable name lets a restart re-read its own pending entries. */
  consumer: string;
  /** Already bound to the component (and consumer) it logs for. */
  logger: Log;
  /** What the logs call it: `<label> started`, `<label> stopped`. */
  label: string;
  /**
   * Handles a read's entries in stream order and acknowledges those it is done with. A throw
   * leaves every entry of the read pending: they are read again after `retryDelayMs`.
   */
  handle: (entries: StreamEntry[]) => Promise<void>;
  /** How long one read blocks waiting for new entries. */
  blockMs: number;
  /** Entries per read. */
  batchSize: number;
  /** An entry pending this long is claimed; 0 claims every pending entry at start. */
  claimIdleMs: number;
  /** Wait after an error (Redis down, handler failed) before reading again. */
  retryDelayMs: number;
}

/** A consumer name unique to this process, readable in XINFO CONSUMERS. */
export function defaultConsumerName(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * Creates the consumer group from the start of the stream (so entries written before the first
 * start are read too), and the stream, if either is missing.
 */
export async function ensureGroup(redis: Redis, stream: string, group: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  } catch (err) {
    // BUSYGROUP is Redis's error code (the reply's first word) for "the group already exists".
    if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
  }
}

/**
 * The entries of an XREADGROUP reply on one stream, whatever the connection's protocol: RESP2
 * nests `[[key, entries]]`; RESP3 answers a map, which ioredis flattens to `[key, entries]`
 * (`replyMapping: 'legacy'`, its default) or gives as `{ key: entries }`. `null` (a block that
 * timed out) yields none.
 */
export function entriesOfRead(reply: unknown): StreamEntry[] {
  let lists: unknown[] = [];
  if (Array.isArray(reply)) {
    lists =
      typeof reply[0] === 'string'
        ? reply.filter((_, i) => i % 2 === 1)
        : reply.map((s: unknown) => (Array.isArray(s) ? (s[1] as unknown) : undefined));
  } else if (reply !== null && typeof reply === 'object') {
    lists = Object.values(reply);
  }
  const out: StreamEntry[] = [];
  for (const entries of lists) if (Array.isArray(entries)) out.push(...(entries as StreamEntry[]));
  return out;
}

/** `{ field: value }` of an entry's flat fields (empty for a trimmed entry). */
export function fieldsOf(flat: readonly string[] | null): Record<string, string> {
  const f: Record<string, string> = {};
  if (!flat) return f;
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
  return f;
}

/** Creates the group if needed and starts reading; resolves once the loop runs. */
export async function startStreamConsumer(opts: StreamConsumerOptions): Promise<StreamConsumer> {
  const { connection: conn, stream, group, consumer, logger: log, batchSize } = opts;
  // Claiming more often than entries can become claimable only burns round trips.
  const claimIntervalMs = Math.max(1_000, Math.floor(opts.claimIdleMs / 2));
  conn.on('error', (err: Error) => log.debug({ err: { message: err.message } }, 'redis error'));
  try {
    await ensureGroup(conn, stream, group);
  } catch (err) {
    conn.disconnect();
    throw err;
  }

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

  const handle = async (entries: StreamEntry[]) => {
    if (entries.length > 0) await opts.handle(entries);
  };

  /** XREADGROUP from `id` ('0': own pending entries; '>': new ones), blocking if asked. */
  const read = (id: '0' | '>', blockMs?: number) =>
    conn.call(
      'XREADGROUP',
      'GROUP',
      group,
      consumer,
      'COUNT',
      batchSize,
      ...(blockMs === undefined ? [] : ['BLOCK', blockMs]),
      'STREAMS',
      stream,
      id,
    );

  const loop = async () => {
    let ownPending = true;
    let nextClaimAt = 0;
    let claimCursor = '0-0';
    let failures = 0;
    while (!stopped) {
      try {
        if (Date.now() >= nextClaimAt) {
          const [next, claimed] = (await conn.call(
            'XAUTOCLAIM',
            stream,
            group,
            consumer,
            opts.claimIdleMs,
            claimCursor,
            'COUNT',
            batchSize,
          )) as [string, StreamEntry[], ...unknown[]];
          if (claimed.length > 0) log.info({ count: claimed.length }, 'claimed pending entries');
          await handle(claimed);
          claimCursor = next;
          if (next === '0-0') nextClaimAt = Date.now() + claimIntervalMs;
          continue;
        }
        if (ownPending) {
          // Id 0 (not '>') returns entries delivered to this consumer and not yet acknowledged.
          const entries = entriesOfRead(await read('0'));
          if (entries.length === 0) ownPending = false;
          else await handle(entries);
          continue;
        }
        // No await between the loop's `stopped` check and here, so stop() sees `inBlock` right.
        inBlock = true;
        const reply = await read('>', opts.blockMs);
        inBlock = false;
        await handle(entriesOfRead(reply));
        if (failures > 0) {
          log.info({ failures }, 'stream reads recovered');
          failures = 0;
        }
      } catch (err) {
        inBlock = false;
        if (stopped) break;
        // One line per run of failures (a Redis outage fails every retry), one when it ends.
        if (failures++ === 0) {
          log.warn(
            { err: { name: (err as Error).name, message: (err as Error).message } },
            'stream read or handler failed; retrying',
          );
        }
        // Whatever was read but not acknowledged is pending on this consumer: read it again.
        ownPending = true;
        await pause(opts.retryDelayMs);
        if (stopped) break;
        // The stream (and with it the group) may have been deleted; recreate rather than spin.
        await ensureGroup(conn, stream, group).catch(() => undefined);
      }
    }
  };

  const running = loop();
  log.info(
    { group, blockMs: opts.blockMs, claimIdleMs: opts.claimIdleMs },
    `${opts.label} started`,
  );
  return {
    consumer,
    isOpen: () => open,
    async stop() {
      if (!open) return;
      stopped = true;
      wake?.();
      // A blocked read returns only after `blockMs`; dropping the connection ends it now. An
      // entry it had just read stays pending and is handled by the next start.
      if (inBlock) conn.disconnect();
      await running;
      if (conn.status !== 'end') await conn.quit().catch(() => conn.disconnect());
      open = false;
      log.info(`${opts.label} stopped`);
    },
  };
}
