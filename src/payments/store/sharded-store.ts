/**
 * The intent store over several shards (REDIS_SHARDS > 1, infra/redis/shards.ts): one
 * RedisIntentStore per shard prefix, and this router with the same surface, so no capability
 * knows shards exist. Whatever names one intent goes to the shard of its key; batch and
 * subscription indexes live in shard 0 (their intents do); lists over all intents merge the
 * shards' pages by the list's sort key with a composite cursor; sweeps and counts ask every shard.
 */
import type { IntentState, IntentType } from '../../kernel/intent.ts';
import type { Intent, IntentDraft, IntentHistoryEntry } from '../../kernel/payment.ts';
import {
  addReseal,
  addUnreadableRecords,
  NO_RESEAL,
  type BatchIntent,
  type BatchIntentRow,
  type IntentFilter,
  type IntentPage,
  type IntentStore,
  type Reseal,
  type ResealCounts,
  type TransitionOptions,
  type TransitionResult,
} from '../../kernel/ports.ts';
import type { KeyLayout } from '../../infra/redis/shards.ts';
import { CursorError, cursorAfter } from './intent-list.ts';
import {
  pageOf,
  type ListedIntent,
  type RedisIntentStore,
  type ReindexCounts,
} from './intent-store.ts';

/**
 * What the app and its tests use of an intent store, one shard or many. Not the data-loss view:
 * each shard's refund store reads its own intent store's (refund-store.ts); not a page's entries,
 * which this store merges (`list` is the page).
 */
export type IntentStoreSurface = Pick<
  RedisIntentStore,
  Exclude<keyof RedisIntentStore, 'dataLossUnacknowledged' | 'listEntries'>
>;

/** Per shard: its cursor, `null` once it has nothing more. Absent: from the start. */
type ShardCursors = (string | null | 0)[];

/**
 * Told when one shard could not be read by a sweep's query while the others could: the sweep goes
 * on with theirs ({@link ShardedIntentStore} `dueForReconcile`).
 */
export type ShardReadError = (shard: number, what: string, err: unknown) => void;

export class ShardedIntentStore implements IntentStore, IntentStoreSurface {
  constructor(
    private readonly shards: readonly RedisIntentStore[],
    private readonly layout: Pick<KeyLayout, 'shardOf'>,
    private readonly onShardReadError: ShardReadError = () => undefined,
  ) {
    if (shards.length < 2) throw new RangeError('a sharded store needs at least two shards');
  }

  /** The shard store of an intent key. */
  of(key: string): RedisIntentStore {
    return this.shards[this.layout.shardOf(key)] ?? this.home;
  }

  /** Shard 0: batches' and subscriptions' intents and indexes. */
  private get home(): RedisIntentStore {
    return this.shards[0]!;
  }

  create(draft: IntentDraft, now: number): Promise<{ created: boolean; intent: Intent }> {
    return this.of(draft.key).create(draft, now);
  }

  get(key: string): Promise<Intent | undefined> {
    return this.of(key).get(key);
  }

  history(key: string): Promise<IntentHistoryEntry[]> {
    return this.of(key).history(key);
  }

  transition(
    key: string,
    to: IntentState,
    now: number,
    opts?: TransitionOptions,
  ): Promise<TransitionResult> {
    return this.of(key).transition(key, to, now, opts);
  }

  recordCheck(intent: Intent, checks: number, nextAt: number | undefined): Promise<boolean> {
    return this.of(intent.key).recordCheck(intent, checks, nextAt);
  }

  markSeenAtGateway(key: string, attempt: number, at: number): Promise<boolean> {
    return this.of(key).markSeenAtGateway(key, attempt, at);
  }

  /**
   * The sweep's three queries (payments/sweep.ts) read what every shard answers: a shard that
   * cannot be read (its cluster master down, not yet failed over) is told to `onShardReadError`
   * and left to the next sweep, so one shard's outage does not stop the sweep of the others.
   * Every shard failing is an error. Lists and counts stay all or nothing: a page or an inbox that
   * silently lacks a shard would read as "nothing there".
   */
  dueForReconcile(now: number, limit: number): Promise<string[]> {
    return this.fanOut((s) => s.dueForReconcile(now, limit), limit, 'dueForReconcile');
  }

  expiredLeases(now: number, limit: number): Promise<string[]> {
    return this.fanOut((s) => s.expiredLeases(now, limit), limit, 'expiredLeases');
  }

  queuedSince(before: number, limit: number): Promise<string[]> {
    return this.fanOut((s) => s.queuedSince(before, limit), limit, 'queuedSince');
  }

  keysUpdatedBefore(state: IntentState, before: number, limit: number): Promise<string[]> {
    return this.fanOut((s) => s.keysUpdatedBefore(state, before, limit), limit);
  }

  keysInState(state: IntentState, limit: number): Promise<string[]> {
    return this.fanOut((s) => s.keysInState(state, limit), limit);
  }

  batchKeys(batchId: string, offset: number, limit: number): Promise<string[]> {
    return this.home.batchKeys(batchId, offset, limit);
  }

  createBatchRows(chunk: {
    batchId: string;
    type: IntentType;
    rows: readonly BatchIntentRow[];
    now: number;
  }): Promise<BatchIntent[]> {
    return this.home.createBatchRows(chunk);
  }

  createBatchDrafts(drafts: readonly IntentDraft[], now: number): Promise<BatchIntent[]> {
    return this.home.createBatchDrafts(drafts, now);
  }

  async countByState(): Promise<Record<IntentState, number>> {
    const all = await Promise.all(this.shards.map((s) => s.countByState()));
    const out = { ...all[0]! };
    for (const counts of all.slice(1)) {
      for (const [state, n] of Object.entries(counts) as [IntentState, number][]) {
        out[state] += n;
      }
    }
    return out;
  }

  async reindexCreated(): Promise<ReindexCounts> {
    const counts = await Promise.all(this.shards.map((s) => s.reindexCreated()));
    return counts.reduce((a, b) => ({
      indexed: a.indexed + b.indexed,
      ...addUnreadableRecords(a, b),
    }));
  }

  /** Every shard's intents, one shard after the other. */
  async resealAll(reseal: Reseal): Promise<ResealCounts> {
    let counts = NO_RESEAL;
    for (const s of this.shards) counts = addReseal(counts, await s.resealAll(reseal));
    return counts;
  }

  /**
   * A page over every shard. Batch and subscription lists walk shard 0 alone (their intents live
   * there). Other lists read a page from each shard and merge them newest first by the score each
   * shard's index walk gave (the state index's for a state list, else `createdAt`), equal scores by
   * key as Redis orders them; an intent a shard cannot read keeps its place (`unreadable`). A shard whose page ended early (its scan budget ran out) stops the merge where it
   * stopped, so nothing is skipped; the cursor carries each shard's own cursor.
   */
  async list(filter: IntentFilter, limit: number, cursor?: string): Promise<IntentPage> {
    if (filter.batchId !== undefined || filter.subscriptionId !== undefined) {
      return this.home.list(filter, limit, cursor);
    }
    const cursors = cursor === undefined ? this.shards.map(() => 0 as const) : decode(cursor);
    if (cursors.length !== this.shards.length) {
      throw new CursorError('the cursor belongs to a deployment with another shard count');
    }
    const pages = await Promise.all(
      this.shards.map((s, i) => {
        const c = cursors[i];
        if (c === null) return Promise.resolve(undefined);
        return s.listEntries(filter, limit, c === 0 || c === undefined ? undefined : c);
      }),
    );
    const heads = pages.map(() => 0);
    const out: ListedIntent[] = [];
    const last: (ListedIntent | undefined)[] = pages.map(() => undefined);
    while (out.length < limit) {
      let best = -1;
      let blocked = false;
      for (let i = 0; i < pages.length; i++) {
        const page = pages[i];
        if (!page) continue;
        const head = page.entries[heads[i]!];
        if (!head) {
          // Out of items: a shard with more to read must be read again before going past it.
          if (page.next !== undefined) blocked = true;
          continue;
        }
        const cur = best < 0 ? undefined : pages[best]!.entries[heads[best]!]!;
        if (!cur || head.score > cur.score || (head.score === cur.score && head.key > cur.key)) {
          best = i;
        }
      }
      if (blocked || best < 0) break;
      const item = pages[best]!.entries[heads[best]!]!;
      heads[best]!++;
      last[best] = item;
      out.push(item);
    }
    const next: ShardCursors = pages.map((page, i) => {
      if (!page) return null;
      const used = heads[i]!;
      if (used >= page.entries.length) return page.next ?? null;
      const before = last[i];
      if (before === undefined) return cursors[i] ?? 0;
      return cursorAfter(filter, before.key, before.score);
    });
    return pageOf(out, next.every((c) => c === null) ? undefined : encode(next));
  }

  /**
   * Up to `limit` keys from every shard, interleaved shard by shard (each shard's order kept).
   * With `partial` (the query's name), the shards that answered when at least one did, the others
   * told to `onShardReadError`; without it, any shard failing fails the whole read.
   */
  private async fanOut(
    read: (s: RedisIntentStore) => Promise<string[]>,
    limit: number,
    partial?: string,
  ): Promise<string[]> {
    let lists: string[][];
    if (partial === undefined) {
      lists = await Promise.all(this.shards.map(read));
    } else {
      const settled = await Promise.allSettled(this.shards.map(read));
      lists = [];
      settled.forEach((r, shard) => {
        if (r.status === 'fulfilled') lists.push(r.value);
        else this.onShardReadError(shard, partial, r.reason);
      });
      if (lists.length === 0) {
        throw (settled[0] as PromiseRejectedResult).reason;
      }
    }
    const out: string[] = [];
    for (let i = 0; out.length < limit; i++) {
      let any = false;
      for (const list of lists) {
        const key = list[i];
        if (key === undefined) continue;
        any = true;
        out.push(key);
        if (out.length === limit) break;
      }
      if (!any) break;
    }
    return out;
  }
}

function encode(c: ShardCursors): string {
  return Buffer.from(JSON.stringify({ sh: c })).toString('base64url');
}

function decode(raw: string): ShardCursors {
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { sh?: unknown };
    if (Array.isArray(v.sh) && v.sh.every((c) => c === null || c === 0 || typeof c === 'string')) {
      return v.sh as ShardCursors;
    }
  } catch {
    // falls through
  }
  throw new CursorError('the cursor is not one this API returned');
}
