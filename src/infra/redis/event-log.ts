/**
 * The events stream `<prefix>:events` (consumable with XREADGROUP), implementing the EventLog
 * port. Payment events are appended by the transition script itself, atomically with the change
 * they report; this appends the rest (alerts, subscription and batch events) and starts the
 * consumer groups that follow the stream.
 */
import type { Redis } from 'ioredis';
import type { BillingEvent } from '../../kernel/events.ts';
import type { EventConsumerOptions, EventLog, StreamConsumer } from '../../kernel/ports.ts';
import { LuaScript } from './lua-script.ts';
import {
  defaultConsumerName,
  ensureGroup,
  fieldsOf,
  startStreamConsumer,
} from './stream-consumer.ts';

const MAX_LEN = '1000000';

/**
 * The event and its de-duplication marker in one step: with two commands, a crash between them
 * left the marker without its event, and every later attempt within the TTL saw the marker and
 * published nothing (a queue paused with no alert). The event is written first, so a failing
 * write leaves no marker either. KEYS: marker, stream. ARGV: ttl, maxlen, id, type, at, data.
 * Returns 1 when the event was appended, 0 when the marker existed.
 */
const APPEND_ONCE = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
  'id', ARGV[3], 'type', ARGV[4], 'at', ARGV[5], 'data', ARGV[6])
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 1
`);

/** The key of the events stream of a deployment (the intent transition script writes it too). */
export function eventsKey(prefix: string): string {
  return `${prefix}:events`;
}

export class RedisEventLog implements EventLog {
  private readonly key: string;
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.key = eventsKey(prefix);
  }

  async append(event: BillingEvent): Promise<void> {
    await this.redis.xadd(
      this.key,
      'MAXLEN',
      '~',
      MAX_LEN,
      '*',
      'id',
      event.id,
      'type',
      event.type,
      'at',
      String(event.at),
      'data',
      JSON.stringify(event.data),
    );
  }

  async appendOnce(event: BillingEvent, ttlSeconds: number): Promise<boolean> {
    const appended = await APPEND_ONCE.run(
      this.redis,
      2,
      `${this.prefix}:alerts:${event.id}`,
      this.key,
      String(ttlSeconds),
      MAX_LEN,
      event.id,
      event.type,
      String(event.at),
      JSON.stringify(event.data),
    );
    return appended === 1;
  }

  async read(fromId = '-', count = 1000): Promise<(BillingEvent & { streamId: string })[]> {
    const rows = await this.redis.xrange(this.key, fromId, '+', 'COUNT', count);
    return rows.map(([streamId, flat]) => {
      const f = fieldsOf(flat);
      return {
        streamId,
        id: f.id ?? '',
        type: f.type as BillingEvent['type'],
        at: Number(f.at),
        data: JSON.parse(f.data ?? '{}') as Record<string, unknown>,
      };
    });
  }

  async entry(streamId: string): Promise<Record<string, string> | undefined> {
    const rows = await this.redis.xrange(this.key, streamId, streamId);
    const row = rows[0];
    return row ? fieldsOf(row[1]) : undefined;
  }

  ensureGroup(group: string): Promise<void> {
    return ensureGroup(this.redis, this.key, group);
  }

  async consume(opts: EventConsumerOptions): Promise<StreamConsumer> {
    await this.ensureGroup(opts.group);
    // The reader blocks on a connection of its own; the consumer closes it on stop.
    const connection = this.redis.duplicate();
    const ack = async (ids: readonly string[]) => {
      if (ids.length > 0) await connection.xack(this.key, opts.group, ...ids);
    };
    return startStreamConsumer({
      connection,
      stream: this.key,
      group: opts.group,
      consumer: opts.consumer ?? defaultConsumerName(),
      logger: opts.logger,
      label: opts.label,
      handle: (entries) => opts.handle(entries, ack),
      blockMs: opts.blockMs,
      batchSize: opts.batchSize,
      claimIdleMs: opts.claimIdleMs,
      retryDelayMs: opts.retryDelayMs,
      ...(opts.onTrimmed ? { onTrimmed: opts.onTrimmed } : {}),
    });
  }
}
