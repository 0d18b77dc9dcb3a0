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
 * What it cannot read is reported, never silently skipped: at start and on each claim pass, a
 * group whose last-delivered id is before the stream's first entry lost entries to the writers'
 * MAXLEN trim before reading them ({@link trimmedUnread}): one error line per such gap.
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
  /**
   * Called once per gap the trim made before the group read it ({@link trimmedUnread}), after its
   * error line; a throw is logged and the call made again on the next claim pass.
   */
  onTrimmed?: () => Promise<void>;
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

/** Orders two stream ids (`<ms>-<seq>`) as Redis does. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm) || BigInt(as) - BigInt(bs);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** `{ field: value }` of an XINFO reply: a flat RESP2 array, or a RESP3 map. */
function infoRecord(reply: unknown): Record<string, unknown> {
  if (reply instanceof Map) return Object.fromEntries(reply) as Record<string, unknown>;
  if (Array.isArray(reply)) {
    const r: Record<string, unknown> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) r[String(reply[i])] = reply[i + 1];
    return r;
  }
  return reply !== null && typeof reply === 'object' ? (reply as Record<string, unknown>) : {};
}

const text = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined;

const counter = (v: unknown): number | undefined =>
  typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v)) ? Number(v) : undefined;

/** A consumer group behind its stream's first entry. */
export interface TrimmedUnread {
  /**
   * How many entries were trimmed before the group read them: `entries-added` − `length` −
   * `entries-read` (Redis 7's counters). Undefined when Redis cannot say (before 7.0, or a
   * group whose read counter is unknown). It can overcount by the entries of an earlier gap,
   * which Redis's read counter never catches up on (it counts entries read, not skipped).
   */
  missed: number | undefined;
  /** The group's last-delivered id. */
  lastDeliveredId: string;
  /** The first id still in the stream; undefined when the stream is empty. */
  firstEntryId: string | undefined;
}

/**
 * Whether entries of `stream` were trimmed (MAXLEN, XTRIM, XDEL) before `group` read them: the
 * entry after its last-delivered id is gone, i.e. that id is before the stream's first entry (or,
 * the stream empty, before its last generated id), and Redis's counters, when it has them, say
 * entries were lost in between. Undefined when not (or the group does not exist). One MULTI, so
 * the two XINFO replies describe the same moment.
 */
export async function trimmedUnread(
  conn: Redis,
  stream: string,
  group: string,
): Promise<TrimmedUnread | undefined> {
  const replies = await conn
    .multi()
    .call('XINFO', 'STREAM', stream)
    .call('XINFO', 'GROUPS', stream)
    .exec();
  const [[streamErr, streamReply] = [], [groupsErr, groupsReply] = []] = replies ?? [];
  if (streamErr) throw streamErr;
  if (groupsErr) throw groupsErr;
  const info = infoRecord(streamReply);
  const groups = Array.isArray(groupsReply) ? groupsReply.map(infoRecord) : [];
  const g = groups.find((r) => text(r.name) === group);
  if (!g) return undefined;
  const lastDeliveredId = text(g['last-delivered-id']) ?? '0-0';
  const first = info['first-entry'];
  const firstEntryId = Array.isArray(first) ? text(first[0]) : undefined;
  const behind =
    firstEntryId !== undefined
      ? compareStreamIds(lastDeliveredId, firstEntryId) < 0
      : compareStreamIds(lastDeliveredId, text(info['last-generated-id']) ?? '0-0') < 0;
  if (!behind) return undefined;
  // Every entry left in the stream is after the group's position: the rest of what was added
  // after it is gone.
  const added = counter(info['entries-added']);
  const read = counter(g['entries-read']);
  const length = counter(info.length) ?? 0;
  if (added !== undefined && read !== undefined) {
    const missed = added - length - read;
    return missed > 0 ? { missed, lastDeliveredId, firstEntryId } : undefined;
  }
  // No counters. A group that never read (created at the stream's start, XGROUP CREATE leaves
  // its counter unset) cannot tell entries trimmed before it existed from entries it missed:
  // it is not reported. One that has read is behind its next entry.
  if (lastDeliveredId === '0-0') return undefined;
  return { missed: undefined, lastDeliveredId, firstEntryId };
}

/** The time in a stream id, ISO 8601 (a stream id itself is masked by the logger as a card number). */
const timeOfId = (id: string) => new Date(Number(id.split('-')[0])).toISOString();

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

  /** The gap last reported: the same one is not reported again on every pass. */
  let reportedGap: string | undefined;
  /** The gap `onTrimmed` last handled without throwing. */
  let handledGap: string | undefined;
  /** The one error line of a gap. */
  const reportTrimmed = (gap: TrimmedUnread) => {
    log.error(
      {
        group,
        stream,
        missed: gap.missed ?? null,
        lastReadAt: timeOfId(gap.lastDeliveredId),
        firstEntryAt: gap.firstEntryId === undefined ? null : timeOfId(gap.firstEntryId),
      },
      `${opts.label}: events were trimmed from the stream before the consumer group read them; ` +
        'they are skipped (docs/notifications.md, "Events trimmed before they were read")',
    );
  };
  /**
   * Logs, once per gap, that the writers' trim overtook the group (see {@link trimmedUnread}), and
   * has `onTrimmed` rebuild after it.
   */
  const checkTrimmed = async () => {
    let gap: TrimmedUnread | undefined;
    try {
      gap = await trimmedUnread(conn, stream, group);
    } catch (err) {
      // Redis down: the claim that follows fails and is retried (and logged) by the loop.
      log.debug({ err: { message: (err as Error).message } }, 'trim check failed');
      return;
    }
    const key = gap && `${gap.lastDeliveredId}>${gap.firstEntryId ?? ''}`;
    if (!gap || key === handledGap) return;
    if (key !== reportedGap) {
      reportedGap = key;
      reportTrimmed(gap);
    }
    if (!opts.onTrimmed) return;
    try {
      await opts.onTrimmed();
      handledGap = key;
    } catch (err) {
      log.error(
        { group, stream, err: { message: (err as Error).message } },
        `${opts.label}: rebuilding after the trimmed events failed; trying again on the next pass`,
      );
    }
  };

  /**
   * XREADGROUP from `id` (`>`: new entries; any other id: this consumer's own pending entries
   * after it), blocking if asked.
   */
  const read = (id: string, blockMs?: number) =>
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
    // Where the pass over this consumer's own pending entries is: one pass, after the last id it
    // handled, so an entry the handler leaves pending is passed over (XAUTOCLAIM retries it after
    // `claimIdleMs`) instead of read again at once, for ever, ahead of every new entry.
    let pendingAfter = '0';
    let nextClaimAt = 0;
    let claimCursor = '0-0';
    let failures = 0;
    while (!stopped) {
      try {
        if (Date.now() >= nextClaimAt) {
          // At start and at the start of each claim pass: did the writers' trim overtake us?
          if (claimCursor === '0-0') await checkTrimmed();
          const [next, claimed, deleted] = (await conn.call(
            'XAUTOCLAIM',
            stream,
            group,
            consumer,
            opts.claimIdleMs,
            claimCursor,
            'COUNT',
            batchSize,
          )) as [string, StreamEntry[], unknown?];
          if (claimed.length > 0) log.info({ count: claimed.length }, 'claimed pending entries');
          // Redis 7 drops pending entries no longer in the stream from the pending list and
          // names them here (before, they came back without fields, for the handler to see).
          if (Array.isArray(deleted) && deleted.length > 0) {
            log.error(
              { group, count: deleted.length },
              'pending entries were trimmed from the stream before they were acknowledged; dropped',
            );
          }
          await handle(claimed);
          claimCursor = next;
          if (next === '0-0') nextClaimAt = Date.now() + claimIntervalMs;
          continue;
        }
        if (ownPending) {
          // An id (not '>') returns entries delivered to this consumer and not yet acknowledged.
          const entries = entriesOfRead(await read(pendingAfter));
          if (entries.length === 0) ownPending = false;
          else {
            await handle(entries);
            pendingAfter = entries[entries.length - 1]![0];
          }
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
        pendingAfter = '0';
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
