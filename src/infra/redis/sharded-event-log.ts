/**
 * The events of a deployment with several intent shards (REDIS_SHARDS > 1): each shard's intent
 * transitions append to the stream of its own prefix (atomically with the change, in its slot);
 * everything else — alerts, subscription and batch events, the payment events of shard 0's
 * intents — goes to the shard-less stream. A consumer follows the shard-less stream, or with
 * `allShards` every stream; ids of shard n≥1's entries are handed out as `s<n>/<id>` so an ack or
 * an `entry()` finds its stream again.
 */
import type { BillingEvent } from '../../kernel/events.ts';
import type {
  EventConsumerOptions,
  EventLog,
  StreamConsumer,
  StreamEntry,
} from '../../kernel/ports.ts';

const ID = /^s(\d+)\/(.+)$/;

export class ShardedEventLog implements EventLog {
  /** `logs[0]` is the shard-less stream, `logs[n]` shard n's. */
  constructor(private readonly logs: readonly EventLog[]) {
    if (logs.length < 2) throw new RangeError('a sharded event log needs two shards');
  }

  private get group(): EventLog {
    return this.logs[0]!;
  }

  append(event: BillingEvent): Promise<void> {
    return this.group.append(event);
  }

  appendOnce(event: BillingEvent, ttlSeconds: number): Promise<boolean> {
    return this.group.appendOnce(event, ttlSeconds);
  }

  /** The shard-less stream (alerts, subscriptions, batches and shard 0's payments). */
  read(fromId?: string, count?: number): Promise<(BillingEvent & { streamId: string })[]> {
    return this.group.read(fromId, count);
  }

  entry(streamId: string): Promise<Record<string, string> | undefined> {
    const m = ID.exec(streamId);
    if (!m) return this.group.entry(streamId);
    const log = this.logs[Number(m[1])];
    return log ? log.entry(m[2]!) : Promise.resolve(undefined);
  }

  async ensureGroup(group: string): Promise<void> {
    await Promise.all(this.logs.map((l) => l.ensureGroup(group)));
  }

  async consume(opts: EventConsumerOptions): Promise<StreamConsumer> {
    if (!opts.allShards) return this.group.consume(opts);
    const consumers: StreamConsumer[] = [];
    try {
      for (const [n, log] of this.logs.entries()) {
        const tag = (id: string) => (n === 0 ? id : `s${n}/${id}`);
        const untag = (id: string) => (n === 0 ? id : id.slice(`s${n}/`.length));
        consumers.push(
          await log.consume({
            ...opts,
            label: n === 0 ? opts.label : `${opts.label} (shard ${n})`,
            handle: (entries, ack) =>
              opts.handle(
                entries.map(([id, fields]): StreamEntry => [tag(id), fields]),
                (ids) => ack(ids.map(untag)),
              ),
          }),
        );
      }
    } catch (err) {
      await Promise.all(consumers.map((c) => c.stop()));
      throw err;
    }
    return {
      consumer: consumers[0]!.consumer,
      isOpen: () => consumers.some((c) => c.isOpen()),
      stop: async () => {
        await Promise.all(consumers.map((c) => c.stop()));
      },
    };
  }
}
