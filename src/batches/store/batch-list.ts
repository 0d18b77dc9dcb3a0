/**
 * Batch lists (GET /batches, `billing batch list`, docs/batches.md "Listing batches"), newest
 * first, walking one sorted set scored by creation time so that a page costs what it returns:
 * the state's index (`idx:batch-state:<state>`, kept by every state-changing script) when a
 * status is given, else the index of every batch (`idx:batch-created`, written by the claim).
 *
 * The cursor is opaque to callers: base64url JSON `{ t, s, k }` (the index's tag, the last
 * batch's score and id), as GET /payments's, so a cursor cannot be replayed on another filter.
 * After a batch still in the index the next page starts at its rank (exact among equal scores);
 * after one that left a state index between two pages, from its score.
 */
import type { Redis } from 'ioredis';
import type { BatchIdPage, BatchState } from '../ports.ts';
import { CursorError } from '../ports.ts';

interface Cursor {
  t: string;
  s: number;
  k: string;
}

function encode(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decode(raw: string, tag: string): Cursor {
  let c: Partial<Cursor> | undefined;
  try {
    c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<Cursor>;
  } catch {
    c = undefined;
  }
  if (c && typeof c.t === 'string' && typeof c.s === 'number' && typeof c.k === 'string') {
    if (c.t !== tag) throw new CursorError('the cursor belongs to a list with another status');
    return c as Cursor;
  }
  throw new CursorError('the cursor is not one this API returned');
}

type Entry = [id: string, score: number];

function pairs(flat: string[]): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])]);
  return out;
}

/** Equal-score entries read past a cursor whose batch left the index (one millisecond's worth). */
const SLACK = 64;

/** Up to `count` entries after the cursor's batch (or from the newest), newest first. */
async function readAfter(
  redis: Redis,
  key: string,
  after: Cursor | undefined,
  count: number,
): Promise<Entry[]> {
  if (after === undefined) {
    return pairs(await redis.zrevrange(key, 0, count - 1, 'WITHSCORES'));
  }
  const rank = await redis.zrevrank(key, after.k);
  if (rank !== null) {
    return pairs(await redis.zrevrange(key, rank + 1, rank + count, 'WITHSCORES'));
  }
  // ZREVRANGE orders equal scores by id descending: skip those at or above the cursor's id.
  const flat = await redis.zrevrangebyscore(
    key,
    String(after.s),
    '-inf',
    'WITHSCORES',
    'LIMIT',
    0,
    count + SLACK,
  );
  return pairs(flat)
    .filter(([id, sc]) => !(sc === after.s && id >= after.k))
    .slice(0, count);
}

/**
 * One page of batch ids, newest first: of `status` when given, else of every batch. Reads
 * `limit + 1` entries (one more says whether a next page exists). Throws {@link CursorError} for a
 * cursor this API did not return or returned for another status.
 */
export async function listBatchIds(
  redis: Redis,
  keys: { byState: (s: BatchState) => string; byCreated: () => string },
  status: BatchState | undefined,
  limit: number,
  cursor?: string,
): Promise<BatchIdPage> {
  const tag = status ?? '*';
  const key = status === undefined ? keys.byCreated() : keys.byState(status);
  const after = cursor === undefined ? undefined : decode(cursor, tag);
  const entries = await readAfter(redis, key, after, limit + 1);
  const page = entries.slice(0, limit);
  const last = page.at(-1);
  return {
    ids: page.map(([id]) => id),
    ...(entries.length > limit && last ? { next: encode({ t: tag, s: last[1], k: last[0] }) } : {}),
  };
}
