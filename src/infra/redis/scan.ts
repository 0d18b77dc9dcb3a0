/**
 * SCAN that sees every key: a cluster client sends SCAN to one node only, so on a cluster every
 * master is scanned (the keys of one of our groups share a hash tag, so they sit on one master).
 */
import type { Redis } from 'ioredis';
import { mastersOf } from './connection.ts';

/**
 * Calls `each` with every batch of keys matching `match`, and the node holding them (a plain
 * connection to that master on a cluster: multi-key commands on a batch of one group's keys are
 * single-slot there).
 */
export async function scanEach(
  redis: Redis,
  match: string,
  each: (keys: string[], node: Redis) => Promise<void>,
): Promise<void> {
  for (const node of await mastersOf(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await each(keys, node);
    } while (cursor !== '0');
  }
}
