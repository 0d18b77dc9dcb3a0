/**
 * The events stream `<prefix>:events` (consumable with XREADGROUP), implementing the EventLog
 * port. Payment events are appended by the transition script itself, atomically with the change
 * they report; this appends the rest (alerts, subscription and batch events) and starts the
 * consumer groups that follow the stream.
 */
import type { Redis } from 'ioredis';
import type { BillingEvent } from '../../kernel/events.ts';
import type { EventConsumerOptions, EventLog, StreamConsumer } from '../../kernel/ports.ts';
import {
  defaultConsumerName,
  ensureGroup,
  fieldsOf,
  startStreamConsumer,
} from './stream-consumer.ts';

const MAX_LEN = '1000000';

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
    const first = await this.redis.set(
      `${this.prefix}:alerts:${event.id}`,
      '1',
      'EX',
      ttlSeconds,
      'NX',
    );
    if (first !== 'OK') return false;
    await this.append(event);
    return true;
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
    });
  }
}
