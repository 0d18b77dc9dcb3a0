/**
 * Payment lists with filters and cursor pagination (GET /payments, docs/operations.md "Finding
 * payments"), walking one sorted-set index so that a page costs what it returns, not what the
 * store holds:
 *
 * | filters given                | index walked                        | order             |
 * | ---------------------------- | ----------------------------------- | ----------------- |
 * | `batch`                      | the batch's rows (`idx:batch:<id>`) | by line           |
 * | `subscription`               | the subscription's renewals         | newest first      |
 * | `state` (no batch/subs)      | the state index (`idx:state:<s>`)   | newest in state   |
 * | otherwise (`type`, dates)    | `idx:created[:<type>]`              | newest first      |

`currency` and `email` (a charge's customer, ignoring case) are never walked: they are checked
on each intent read, within the same budget.
 *
 * Date bounds on the created index are score ranges (exact). Any other filter is checked on each
 * intent the walk reads; a walk reads at most {@link SCAN_BUDGET_FACTOR} × `limit` index entries
 * per call and then answers with what it found and a cursor to go on, so a filter that matches
 * rarely costs bounded work per page, never a scan of the store.
 */
import type { Redis } from 'ioredis';
import type { IntentFilter } from '../../kernel/ports.ts';
import { storeKeys, type StoreKeys } from '../../infra/redis/keys.ts';

export interface KeyPage {
  keys: string[];
  /** Each key's score in the index walked (`scores[i]` is `keys[i]`'s). */
  scores: number[];
  /** Opaque; absent on the last page. */
  next?: string;
}

/** A page reads at most this many times `limit` index entries. */
export const SCAN_BUDGET_FACTOR = 20;

interface Walk {
  /** Tag of the index, carried in the cursor so a cursor cannot be replayed on other filters. */
  tag: string;
  key: string;
  /** Ascending (batch rows by line) or descending (newest first). */
  ascending: boolean;
  min: number;
  max: number;
  /** Filters the index does not answer itself. */
  residual: IntentFilter;
}

function walkFor(k: StoreKeys, f: IntentFilter): Walk {
  const { batchId, subscriptionId, state, type, createdAfter, createdBefore } = f;
  const rest = (omit: (keyof IntentFilter)[]): IntentFilter => {
    const r: IntentFilter = { ...f };
    for (const o of omit) delete r[o];
    return r;
  };
  if (batchId !== undefined) {
    return {
      tag: `b:${batchId}`,
      key: k.byBatch(batchId),
      ascending: true,
      min: -Infinity,
      max: Infinity,
      residual: rest(['batchId']),
    };
  }
  if (subscriptionId !== undefined) {
    return {
      tag: `s:${subscriptionId}`,
      key: k.bySubscription(subscriptionId),
      ascending: false,
      min: -Infinity,
      max: Infinity,
      residual: rest(['subscriptionId']),
    };
  }
  if (state !== undefined) {
    return {
      tag: `st:${state}`,
      key: k.byState(state),
      ascending: false,
      min: -Infinity,
      max: Infinity,
      residual: rest(['state']),
    };
  }
  return {
    tag: `c:${type ?? ''}`,
    key: k.byCreated(type),
    ascending: false,
    min: createdAfter ?? -Infinity,
    max: createdBefore ?? Infinity,
    residual: rest(['type', 'createdAfter', 'createdBefore']),
  };
}

interface Cursor {
  t: string;
  s: number;
  k: string;
}

/** A cursor this API did not issue, or issued for other filters. */
export class CursorError extends RangeError {}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(raw: string, tag: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<Cursor>;
    if (typeof c.t === 'string' && typeof c.s === 'number' && typeof c.k === 'string') {
      if (c.t !== tag) throw new CursorError('the cursor belongs to a list with other filters');
      return c as Cursor;
    }
  } catch (err) {
    if (err instanceof CursorError) throw err;
  }
  throw new CursorError('the cursor is not one this API returned');
}

const bound = (n: number) => (n === Infinity ? '+inf' : n === -Infinity ? '-inf' : String(n));

type Entry = [member: string, score: number];

function pairs(flat: string[]): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])]);
  return out;
}

const inRange = (w: Walk, score: number) => score >= w.min && score <= w.max;

/**
 * Up to `count` index entries after `after` (or from the start of the range), in walk order.
 * After an entry still in the index: by its rank, exact even among entries of equal score (a batch
 * chunk shares one createdAt). After one that left it (an intent that changed state): from its
 * score, skipping the equal-score entries ordered before it.
 */
async function readAfter(
  redis: Redis,
  w: Walk,
  after: { m: string; s: number } | undefined,
  count: number,
): Promise<{ entries: Entry[]; end: boolean }> {
  if (after === undefined) {
    const flat = w.ascending
      ? await redis.zrangebyscore(
          w.key,
          bound(w.min),
          bound(w.max),
          'WITHSCORES',
          'LIMIT',
          0,
          count,
        )
      : await redis.zrevrangebyscore(
          w.key,
          bound(w.max),
          bound(w.min),
          'WITHSCORES',
          'LIMIT',
          0,
          count,
        );
    const entries = pairs(flat);
    return { entries, end: entries.length < count };
  }
  const rank = w.ascending
    ? await redis.zrank(w.key, after.m)
    : await redis.zrevrank(w.key, after.m);
  if (rank !== null) {
    const flat = w.ascending
      ? await redis.zrange(w.key, String(rank + 1), String(rank + count), 'WITHSCORES')
      : await redis.zrevrange(w.key, String(rank + 1), String(rank + count), 'WITHSCORES');
    const all = pairs(flat);
    const entries = all.filter(([, sc]) => inRange(w, sc));
    return { entries, end: all.length < count || entries.length < all.length };
  }
  const slack = 256;
  const flat = w.ascending
    ? await redis.zrangebyscore(
        w.key,
        bound(after.s),
        bound(w.max),
        'WITHSCORES',
        'LIMIT',
        0,
        count + slack,
      )
    : await redis.zrevrangebyscore(
        w.key,
        bound(after.s),
        bound(w.min),
        'WITHSCORES',
        'LIMIT',
        0,
        count + slack,
      );
  const all = pairs(flat);
  const entries = all
    .filter(([m, sc]) => !(sc === after.s && (w.ascending ? m <= after.m : m >= after.m)))
    .slice(0, count);
  return { entries, end: all.length < count + slack };
}

/** Keys of intents matching `filter`, one page of at most `limit`. */
export async function listIntentKeys(
  redis: Redis,
  k: StoreKeys,
  filter: IntentFilter,
  limit: number,
  cursor?: string,
): Promise<KeyPage> {
  const w = walkFor(k, filter);
  const c = cursor === undefined ? undefined : decodeCursor(cursor, w.tag);
  const checks = Object.keys(w.residual).length > 0;
  const budget = limit * SCAN_BUDGET_FACTOR;
  const keys: string[] = [];
  const scores: number[] = [];
  let last = c ? { m: c.k, s: c.s } : undefined;
  let scanned = 0;
  let end = false;
  while (keys.length < limit && scanned < budget && !end) {
    const want = Math.min(budget - scanned, (limit - keys.length) * (checks ? 4 : 1));
    const read = await readAfter(redis, w, last, want);
    end = read.end;
    const matches = checks
      ? await matching(redis, k, read.entries, w.residual)
      : read.entries.map(() => true);
    for (let i = 0; i < read.entries.length; i++) {
      const [m, sc] = read.entries[i]!;
      scanned++;
      last = { m, s: sc };
      if (matches[i]) {
        keys.push(m);
        scores.push(sc);
      }
      if (keys.length === limit) {
        // Stopped inside what was read: more may follow.
        if (i < read.entries.length - 1) end = false;
        break;
      }
    }
    if (read.entries.length === 0) end = true;
  }
  if (end && keys.length < limit) return { keys, scores };
  if (last === undefined) return { keys, scores };
  if (end) {
    // A full page that ended exactly with the index: look once whether anything follows.
    const more = await readAfter(redis, w, last, 1);
    if (more.entries.length === 0) return { keys, scores };
  }
  return { keys, scores, next: encodeCursor({ t: w.tag, s: last.s, k: last.m }) };
}

/** For each entry, whether its intent passes the residual filters (one pipelined HMGET each). */
async function matching(
  redis: Redis,
  k: StoreKeys,
  entries: readonly [string, number][],
  f: IntentFilter,
): Promise<boolean[]> {
  const pipe = redis.pipeline();
  for (const [m] of entries)
    pipe.hmget(
      k.intent(m),
      'type',
      'state',
      'batchId',
      'subscriptionId',
      'createdAt',
      'currency',
      ...(f.email !== undefined ? ['payee'] : []),
    );
  const replies = (await pipe.exec()) ?? [];
  return replies.map(([err, v]) => {
    if (err) throw err;
    const [type, state, batchId, subscriptionId, createdAt, currency, payee] = v as (
      string | null
    )[];
    if (state === null || state === undefined) return false;
    if (f.type !== undefined && type !== f.type) return false;
    if (f.state !== undefined && state !== f.state) return false;
    if (f.batchId !== undefined && batchId !== f.batchId) return false;
    if (f.subscriptionId !== undefined && subscriptionId !== f.subscriptionId) return false;
    const at = Number(createdAt);
    if (f.createdAfter !== undefined && at < f.createdAfter) return false;
    if (f.createdBefore !== undefined && at > f.createdBefore) return false;
    if (f.currency !== undefined && currency !== f.currency) return false;
    if (f.email !== undefined && emailOf(payee) !== f.email) return false;
    return true;
  });
}

/** A charge payee's email, lower-case (the payee is stored as JSON); undefined for a payout. */
function emailOf(payee: string | null | undefined): string | undefined {
  if (!payee) return undefined;
  try {
    const p = JSON.parse(payee) as { email?: unknown };
    return typeof p.email === 'string' ? p.email.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The cursor that resumes a walk of `filter` right after `member` (scored `score` in the walked
 * index): how the sharded store (sharded-store.ts) resumes a shard in the middle of a page it
 * merged with other shards' pages.
 */
export function cursorAfter(filter: IntentFilter, member: string, score: number): string {
  return encodeCursor({ t: walkFor(storeKeys(''), filter).tag, s: score, k: member });
}
