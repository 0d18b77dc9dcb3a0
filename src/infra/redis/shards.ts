/**
 * Key groups: which prefix every store and queue of a deployment writes under, so that on a Redis
 * Cluster every script and every MULTI touches one hash slot, and payments spread over the masters.
 *
 * - Shard 0 is the shard-less group: subscriptions, batches, test clocks, the epoch, alerts, the
 *   rate limiter, every queue's schedulers, and the intents of batches and subscriptions (their
 *   trackers' scripts update an intent, its batch or subscription and the events stream in one
 *   step, so those intents stay in the group of their batch or subscription).
 * - API payments (`api_…` intent keys) are spread over shards 0..N-1 by a stable FNV-1a hash of
 *   the intent key ({@link shardOf}), never Redis's own slot function: each shard has its own
 *   intents, indexes, leases, reconcile schedule, events stream and submit/reconcile queues.
 *
 * Standalone with one shard every prefix is QUEUE_PREFIX itself, so the keys of a deployment that
 * predates this file stay exactly as they were. In cluster mode each prefix is a hash tag
 * (`{billing}`, `{billing:s2}`): Redis hashes only what is inside the braces, so every key of one
 * group lands in one slot. docs/operations.md, "Redis Cluster".
 */
import type { Redis } from 'ioredis';
import { FatalError } from '../../kernel/errors.ts';
import { parseRefundKey } from '../../kernel/ids.ts';
import { epochKey } from './epoch.ts';
import { LuaScript } from './lua-script.ts';

/** The prefixes of one deployment. */
export interface KeyLayout {
  /** The shard-less group's prefix (also shard 0's). */
  readonly group: string;
  /** How many intent shards (REDIS_SHARDS); at least 1. */
  readonly shards: number;
  /** Shard indexes this process consumes queues of (REDIS_SHARDS_SERVED); every one by default. */
  readonly served: readonly number[];
  /** True on a Redis Cluster: every prefix is a hash tag. */
  readonly cluster: boolean;
  /** The prefix of shard `n` (0-based). */
  shard(n: number): string;
  /** Every shard's prefix, in shard order. */
  shardPrefixes(): string[];
  /** Every prefix the deployment writes (shard 0 is the group): where readiness probes write. */
  allPrefixes(): string[];
  /**
   * The shard of an intent key: API payments by hash, a refund in its charge's shard, every other
   * intent in shard 0.
   */
  shardOf(intentKey: string): number;
}

/** Builds the layout from QUEUE_PREFIX, the shard count, the served subset and the mode. */
export function keyLayout(opts: {
  prefix: string;
  shards?: number;
  served?: readonly number[];
  cluster?: boolean;
}): KeyLayout {
  const shards = opts.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError('shards must be >= 1');
  const cluster = opts.cluster ?? false;
  const bare = opts.prefix;
  const tag = (s: string) => (cluster ? `{${s}}` : s);
  const group = tag(bare);
  const names = shardNames(bare, shards);
  const shard = (n: number) => {
    const name = names[n];
    if (name === undefined) throw new RangeError(`shard ${n} is not one of 0..${shards - 1}`);
    return tag(name);
  };
  const prefixes = names.map(tag);
  const served =
    opts.served && opts.served.length > 0 ? [...opts.served] : prefixes.map((_, n) => n);
  for (const n of served) {
    if (!Number.isInteger(n) || n < 0 || n >= shards) {
      throw new RangeError(`served shard ${n} is not one of 0..${shards - 1}`);
    }
  }
  return {
    group,
    shards,
    served,
    cluster,
    shard,
    shardPrefixes: () => [...prefixes],
    allPrefixes: () => [...prefixes],
    shardOf: (intentKey) => {
      // A refund lives with its charge (the reservation script touches both in one step).
      const key = parseRefundKey(intentKey)?.chargeKey ?? intentKey;
      return shards === 1 || !key.startsWith(SPREAD) ? 0 : fnv1a(key) % shards;
    },
  };
}

/** Intent keys spread over the shards: API payments (kernel/ids.ts `apiIntentKey`). */
const SPREAD = 'api_';

/**
 * The names of the shards (shard 0 is the prefix itself). Shard n≥1 is `<prefix>:s<n>`, with a
 * `~<salt>` added when needed so that the shards' hash slots fall in different n-ths of the slot
 * space: a cluster created with evenly split slots (what `redis-cli --cluster create` and managed
 * services do) then serves N shards from min(N, masters) different masters, where plain names
 * could hash to one master by chance. Deterministic in (prefix, N): the names never change.
 */
export function shardNames(prefix: string, shards: number): string[] {
  const part = (slot: number) => Math.floor((slot * shards) / SLOTS);
  const taken = new Set([part(keySlot(prefix))]);
  const names = [prefix];
  let next = 0;
  for (let n = 1; n < shards; n++) {
    while (taken.has(next)) next++;
    const want = next;
    taken.add(want);
    let name = `${prefix}:s${n}`;
    for (let salt = 1; part(keySlot(name)) !== want; salt++) name = `${prefix}:s${n}~${salt}`;
    names.push(name);
  }
  return names;
}

/** Redis Cluster's slot count. */
const SLOTS = 16_384;

/** The hash slot of a hash tag's content (CRC16/XMODEM mod 16384, as Redis computes it). */
export function keySlot(tag: string): number {
  let crc = 0;
  for (const b of Buffer.from(tag, 'utf8')) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % SLOTS;
}

/** FNV-1a, 32 bits: stable across processes, versions and platforms (the shard of a key never moves). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  const bytes = Buffer.from(text, 'utf8');
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The shard count stored for the deployment differs from REDIS_SHARDS. */
export class ShardCountMismatchError extends FatalError {
  constructor(
    readonly stored: number,
    readonly configured: number,
  ) {
    super(
      `REDIS_SHARDS=${configured} but this deployment's data was written with REDIS_SHARDS=${stored}: ` +
        `intents live in the shard their key hashes to, so changing the count would hide them. ` +
        `Start with REDIS_SHARDS=${stored} (docs/operations.md, "Redis Cluster": changing the shard count).`,
      'redis_shard_count_mismatch',
    );
    this.name = 'ShardCountMismatchError';
  }
}

/** Where the shard count is recorded (the shard-less group). */
export const shardCountKey = (layout: KeyLayout) => `${layout.group}:shards`;

/**
 * Records the shard count on first start and refuses another one later. A deployment that
 * predates the record (its epoch exists, no count) was written with one shard.
 */
const CLAIM_SHARDS = new LuaScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return tonumber(cur) end
if redis.call('EXISTS', KEYS[2]) == 1 and ARGV[1] ~= '1' then return 1 end
redis.call('SET', KEYS[1], ARGV[1])
return tonumber(ARGV[1])
`);

/** Throws {@link ShardCountMismatchError} when the stored count is not `layout.shards`. */
export async function assertShardCount(redis: Redis, layout: KeyLayout): Promise<void> {
  const stored = (await CLAIM_SHARDS.run(
    redis,
    2,
    shardCountKey(layout),
    epochKey(layout.group),
    String(layout.shards),
  )) as number;
  if (stored !== layout.shards) throw new ShardCountMismatchError(stored, layout.shards);
}

/**
 * Records the count again when the record is gone, for a process whose count
 * {@link assertShardCount} accepted: the group's master lost its data while the service ran. The
 * loss check then rewrites the group's epoch (epoch.ts), and an epoch without a count reads as a
 * deployment that predates the record (one shard), so without this every restart and every CLI
 * command would be refused, told to use REDIS_SHARDS=1 (which would hide every other shard).
 * Never changes a recorded count.
 */
export async function restoreShardCount(redis: Redis, layout: KeyLayout): Promise<void> {
  await redis.set(shardCountKey(layout), String(layout.shards), 'NX');
}
