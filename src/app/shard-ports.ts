/**
 * The composition root's Redis side for a key layout (infra/redis/shards.ts): per shard an intent
 * store, a dispatcher and an events stream, and with several shards the routers over them, so the
 * rest of the root and every capability see one store, one dispatcher and one event log.
 */
import type { Redis } from 'ioredis';
import type { EventLog, RefundStore } from '../kernel/ports.ts';
import { createDispatcher, type QueueDispatcher } from '../infra/queues/dispatcher.ts';
import { QUEUES } from '../infra/queues/names.ts';
import {
  shardedDispatcher,
  summedQueue,
  type QueueGauge,
} from '../infra/queues/sharded-dispatcher.ts';
import { RedisEventLog } from '../infra/redis/event-log.ts';
import { ShardedEventLog } from '../infra/redis/sharded-event-log.ts';
import type { KeyLayout } from '../infra/redis/shards.ts';
import { RedisIntentStore, type IntentStoreOptions } from '../payments/store/intent-store.ts';
import { RedisRefundStore } from '../payments/store/refund-store.ts';
import { ShardedRefundStore } from '../payments/store/sharded-refund-store.ts';
import {
  ShardedIntentStore,
  type IntentStoreSurface,
  type ShardReadError,
} from '../payments/store/sharded-store.ts';

export interface ShardPorts {
  store: IntentStoreSurface;
  /** Refunds, each charge's in its charge's shard (the reservation script touches both). */
  refunds: RefundStore;
  dispatcher: QueueDispatcher;
  events: EventLog;
  /** Every queue name once, its shards' counts added up (for /metrics). */
  queueGauges: () => QueueGauge[];
}

/** Builds the ports of every shard of `layout`; shard 0's prefix is the group's. */
export function shardPorts(
  layout: KeyLayout,
  conns: { store: Redis; queue: Redis },
  onQueueError: (err: Error) => void,
  /**
   * Each shard's store options: its share of the outbound rate (claims take it in-script), and
   * the data-loss view that marks intents.
   */
  storeOptions: IntentStoreOptions = {},
  /** A shard the sweep could not read while others could (sharded-store.ts). */
  onShardReadError: ShardReadError = () => undefined,
): ShardPorts {
  const prefixes = layout.shardPrefixes();
  const stores = prefixes.map((p) => new RedisIntentStore(conns.store, p, storeOptions));
  const refunds = prefixes.map((p, n) => new RedisRefundStore(conns.store, p, stores[n]!));
  const dispatchers = prefixes.map((p) => createDispatcher(conns.queue, p, onQueueError));
  const events = prefixes.map((p) => new RedisEventLog(conns.store, p));
  const names = Object.values(QUEUES);
  if (layout.shards === 1) {
    const dispatcher = dispatchers[0]!;
    return {
      store: stores[0]!,
      refunds: refunds[0]!,
      dispatcher,
      events: events[0]!,
      queueGauges: () => names.map((q) => dispatcher.queue(q)),
    };
  }
  const routed = shardedDispatcher(dispatchers, layout);
  return {
    store: new ShardedIntentStore(stores, layout, onShardReadError),
    refunds: new ShardedRefundStore(refunds, layout),
    dispatcher: routed,
    events: new ShardedEventLog(events),
    queueGauges: () => names.map((q) => summedQueue(routed.queuesOf(q))),
  };
}
