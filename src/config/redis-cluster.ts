/**
 * The Redis Cluster and shard variables of the configuration (config.ts imports them; nothing
 * else reads the environment): REDIS_CLUSTER_NODES, REDIS_SHARDS, REDIS_SHARDS_SERVED and the
 * QUEUE_PREFIX forms a cluster accepts. docs/operations.md, "Redis Cluster".
 */
import { z } from 'zod';

/** SAYSWITCH_RATE_LIMIT_PER_SEC when unset (config.ts's schema takes it from here). */
export const DEFAULT_RATE_LIMIT_PER_SEC = 20;

/** Most intent shards a deployment may have (each is a hash tag, i.e. one slot). */
export const MAX_SHARDS = 256;

/**
 * QUEUE_PREFIX: letters, digits, `_`, `-`; also written `{billing}` (the form BullMQ's docs show
 * for a cluster). The braces are dropped: the key layout adds hash tags itself in cluster mode
 * (infra/redis/shards.ts), so `billing` and `{billing}` name the same deployment.
 */
export const queuePrefix = z
  .string()
  .optional()
  .default('billing')
  .transform((v) => (/^\{[^{}]*\}$/.test(v) ? v.slice(1, -1) : v))
  .refine(
    (v) => /^[A-Za-z0-9_-]{1,32}$/.test(v),
    'must be 1-32 letters, digits, "_" or "-" (optionally inside one pair of braces, e.g. {billing})',
  );

/**
 * REDIS_CLUSTER_NODES: `host:port,host:port,...` seed nodes; unset means standalone Redis. A bad
 * entry is named by its position, never quoted: it may be a URL with a password in it
 * (`redis://:secret@10.0.0.1:7000`), and configuration errors never echo a secret (config.ts).
 */
export const clusterNodes = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === '') return undefined;
    const nodes: { host: string; port: number }[] = [];
    const parts = v.split(',').map((s) => s.trim());
    for (const [index, part] of parts.entries()) {
      const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(part);
      const port = m ? Number(m[2]) : 0;
      if (!m || port < 1 || port > 65_535) {
        const what = /^[a-z][a-z0-9+.-]*:\/\//i.test(part)
          ? 'is a URL: give host:port only, without scheme or credentials'
          : 'is not host:port';
        ctx.addIssue({
          code: 'custom',
          message: `entry ${index + 1} of ${parts.length} ${what} (a comma-separated list, e.g. 10.0.0.1:7000,10.0.0.2:7000)`,
        });
        return z.NEVER;
      }
      nodes.push({ host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port });
    }
    return nodes;
  });

/** REDIS_SHARDS_SERVED: `0,2` — the shards whose queues this process consumes (default all). */
export const shardsServed = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === '') return [];
    const out: number[] = [];
    for (const part of v.split(',').map((s) => s.trim())) {
      if (!/^\d+$/.test(part)) {
        ctx.addIssue({ code: 'custom', message: `"${part}" is not a shard number (e.g. 0,2)` });
        return z.NEVER;
      }
      out.push(Number(part));
    }
    return [...new Set(out)].sort((a, b) => a - b);
  });

/** Cross-variable rule: every served shard exists. */
export function shardProblems(raw: Record<string, string | undefined>) {
  const problems: { variable: string; message: string }[] = [];
  const shards = Number(raw.REDIS_SHARDS ?? '1') || 1;
  const served = shardsServed.safeParse(raw.REDIS_SHARDS_SERVED);
  if (served.success) {
    const bad = served.data.filter((n) => n >= shards);
    if (bad.length > 0) {
      problems.push({
        variable: 'REDIS_SHARDS_SERVED',
        message: `shard ${bad.join(', ')} does not exist with REDIS_SHARDS=${shards} (shards are 0..${shards - 1})`,
      });
    }
  }
  // Each shard gets floor(rate / shards) gateway calls per second, at least one (a shard that may
  // send nothing never pays): below one per shard the shards together would exceed the limit.
  // Unset or empty is the schema's default (config.ts reads "" as unset, like every number).
  const rateRaw = raw.SAYSWITCH_RATE_LIMIT_PER_SEC;
  const rate =
    rateRaw === undefined || rateRaw === '' ? DEFAULT_RATE_LIMIT_PER_SEC : Number(rateRaw);
  if (Number.isInteger(rate) && rate >= 1 && rate < shards) {
    problems.push({
      variable: 'SAYSWITCH_RATE_LIMIT_PER_SEC',
      message: `must be at least REDIS_SHARDS (${shards}): each shard sends at least one gateway call per second, so ${rate} per second cannot be kept across ${shards} shards`,
    });
  }
  return problems;
}
