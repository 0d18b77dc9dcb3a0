/**
 * The events stream `<prefix>:events` (consumable with XREADGROUP). Payment events are appended
 * by the transition script itself, atomically with the change they report; this appends the rest
 * (alerts, subscription and batch events).
 */
import type { Redis } from 'ioredis';
import type { BillingEvent } from '../../kernel/events.ts';
import { storeKeys } from '../../payments/store/keys.ts';

const MAX_LEN = '1000000';

export class EventLog {
  private readonly key: string;
  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = storeKeys(prefix).events();
  }

  /** Appends one event. Its `id` must be deterministic for the fact it reports. */
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

  /** Reads events in order (for tests, the CLI and the notifier). */
  async read(fromId = '-', count = 1000): Promise<(BillingEvent & { streamId: string })[]> {
    const rows = await this.redis.xrange(this.key, fromId, '+', 'COUNT', count);
    return rows.map(([streamId, flat]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
      return {
        streamId,
        id: f.id ?? '',
        type: f.type as BillingEvent['type'],
        at: Number(f.at),
        data: JSON.parse(f.data ?? '{}') as Record<string, unknown>,
      };
    });
  }
}
