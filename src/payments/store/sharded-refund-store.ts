/**
 * Refunds over several shards (REDIS_SHARDS > 1): a charge's refunds live in its charge's shard —
 * the reservation script reads the charge and writes the refund intent in one step, so both must
 * share a hash slot — and `shardOf` sends a refund key (`rf<n>_<chargeKey>`) to the same shard
 * (infra/redis/shards.ts). Every method names the charge, so routing is by the charge's key.
 */
import type { RefundReservation, RefundStore } from '../../kernel/ports.ts';
import type { KeyLayout } from '../../infra/redis/shards.ts';

export class ShardedRefundStore implements RefundStore {
  constructor(
    private readonly shards: readonly RefundStore[],
    private readonly layout: Pick<KeyLayout, 'shardOf'>,
  ) {}

  private of(chargeKey: string): RefundStore {
    return this.shards[this.layout.shardOf(chargeKey)] ?? this.shards[0]!;
  }

  reserve(req: RefundReservation): ReturnType<RefundStore['reserve']> {
    return this.of(req.chargeKey).reserve(req);
  }

  refundsOf(chargeKey: string): ReturnType<RefundStore['refundsOf']> {
    return this.of(chargeKey).refundsOf(chargeKey);
  }

  takeSlot(chargeKey: string, refundKey: string): ReturnType<RefundStore['takeSlot']> {
    return this.of(chargeKey).takeSlot(chargeKey, refundKey);
  }
}
