/**
 * Start-up check of the Redis we are about to trust with money movement. BullMQ keeps jobs,
 * locks and schedulers as ordinary keys; under any eviction policy Redis may delete them when
 * memory is short, silently losing jobs or letting a lock expire early so that two workers run
 * the same charge. Only `maxmemory-policy noeviction` is safe (docs/product.md §1).
 */
import type { Redis } from 'ioredis';
import { FatalError } from '../../kernel/errors.ts';
import { connectNode, mastersOf, type RedisTarget } from './connection.ts';

/** The one policy under which Redis never deletes keys on its own. */
export const SAFE_EVICTION_POLICY = 'noeviction';

/** Name of the override, read by the config layer and passed in as `allowEviction`. */
export const ALLOW_EVICTION_ENV = 'REDIS_ALLOW_EVICTION';

/** Outcome of {@link checkRedisEviction}. `policy` is null when Redis would not say. */
export type RedisEvictionCheck =
  | { ok: true; policy: string | null; warning?: string }
  | { ok: false; policy: string | null; message: string };

/** Options of {@link checkRedisEviction} and {@link assertRedisReady}. */
export interface RedisEvictionOptions {
  /** `REDIS_ALLOW_EVICTION=true`: start anyway, with a warning. */
  allowEviction: boolean;
}

/** Thrown by {@link assertRedisReady}; `code` is `redis_eviction_policy`, kind `fatal`. */
export class RedisEvictionPolicyError extends FatalError {
  readonly policy: string | null;

  constructor(message: string, policy: string | null, cause?: unknown) {
    super(message, 'redis_eviction_policy', { cause });
    this.name = 'RedisEvictionPolicyError';
    this.policy = policy;
  }
}

/**
 * Reads `maxmemory-policy` — with `CONFIG GET`, or from `INFO memory` where CONFIG is disabled
 * or renamed (managed Redis) — and says whether it is safe for BullMQ. A connection error
 * rejects; it is not a policy verdict.
 */
export async function checkRedisEviction(
  redis: Redis,
  options: RedisEvictionOptions,
): Promise<RedisEvictionCheck> {
  // On a cluster every master holds some of our keys: the first unsafe one decides.
  const policies = await Promise.all(
    (await mastersOf(redis)).map((node) => readEvictionPolicy(node)),
  );
  const unsafe = policies.find((p) => p !== SAFE_EVICTION_POLICY);
  const policy = unsafe === undefined ? SAFE_EVICTION_POLICY : unsafe;
  if (policy === SAFE_EVICTION_POLICY) return { ok: true, policy };

  const problem =
    policy === null
      ? `Could not read Redis maxmemory-policy (CONFIG GET and INFO memory both failed or omit it), so it cannot be verified to be "${SAFE_EVICTION_POLICY}".`
      : `Redis maxmemory-policy is "${policy}"; it must be "${SAFE_EVICTION_POLICY}".`;
  const why =
    'Under an eviction policy Redis deletes keys when memory runs short, and BullMQ loses jobs, ' +
    'job locks and schedules with them: payments can be dropped or run twice.';
  if (options.allowEviction) {
    return {
      ok: true,
      policy,
      warning: `${problem} ${why} Starting anyway because ${ALLOW_EVICTION_ENV}=true.`,
    };
  }
  const fix =
    `Set "maxmemory-policy ${SAFE_EVICTION_POLICY}" on the Redis server (with "appendonly yes"), ` +
    `or set ${ALLOW_EVICTION_ENV}=true to start anyway at your own risk.`;
  return { ok: false, policy, message: `${problem} ${why} ${fix}` };
}

/**
 * {@link checkRedisEviction} for the composition root: resolves with the check when it passes
 * (a `warning` to log if overridden), throws {@link RedisEvictionPolicyError} when it does not.
 */
export async function assertRedisReady(
  redis: Redis,
  options: RedisEvictionOptions,
): Promise<Extract<RedisEvictionCheck, { ok: true }>> {
  const result = await checkRedisEviction(redis, options);
  if (!result.ok) throw new RedisEvictionPolicyError(result.message, result.policy);
  return result;
}

async function readEvictionPolicy(redis: Redis): Promise<string | null> {
  try {
    const reply: unknown = await redis.config('GET', 'maxmemory-policy');
    const policy = policyFromConfigReply(reply);
    if (policy !== null) return policy;
  } catch (err) {
    // Only a refusal by the server (unknown/renamed command, ACL) falls back to INFO; a broken
    // connection is not something INFO would fix.
    if (!isReplyError(err)) throw err;
  }
  const info = await redis.info('memory');
  const match = /^maxmemory_policy:(\S+)\s*$/m.exec(info);
  return match?.[1] ?? null;
}

/** RESP2 gives `['maxmemory-policy', value]`, RESP3 a map (an object, or entries). */
function policyFromConfigReply(reply: unknown): string | null {
  if (Array.isArray(reply)) {
    const items: unknown[] = reply;
    const index = items.findIndex((v) => asText(v) === 'maxmemory-policy');
    return index >= 0 ? asText(items[index + 1]) : null;
  }
  if (reply instanceof Map) return asText((reply as Map<unknown, unknown>).get('maxmemory-policy'));
  if (reply !== null && typeof reply === 'object') {
    return asText((reply as Record<string, unknown>)['maxmemory-policy']);
  }
  return null;
}

function asText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return null;
}

function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

/** How long a readiness probe key lives: it only has to be written, never read. */
const PROBE_TTL_MS = 10_000;

/**
 * Readiness's write path: a SET with expiry under every prefix the deployment writes (the
 * shard-less group and each shard), so on a cluster every master holding our slots must accept a
 * write — a master that is down, still failing over, read-only or out of memory fails it, where a
 * PING to any one node would still answer. True when every write was acknowledged.
 */
export async function probeWrites(redis: Redis, prefixes: readonly string[]): Promise<boolean> {
  const replies = await Promise.all(
    prefixes.map((p) => redis.set(`${p}:readyz`, String(Date.now()), 'PX', PROBE_TTL_MS)),
  );
  return replies.every((r) => r === 'OK');
}

/** REDIS_URL points at a node of a Redis Cluster but REDIS_CLUSTER_NODES is not set. */
export class RedisClusterNotConfiguredError extends FatalError {
  constructor() {
    super(
      'REDIS_URL points at a node of a Redis Cluster (cluster_enabled:1), but REDIS_CLUSTER_NODES ' +
        "is not set: a plain connection cannot follow the cluster's slots (MOVED, CROSSSLOT). Set " +
        'REDIS_CLUSTER_NODES=host:port,... (docs/operations.md, "Redis Cluster").',
      'redis_cluster_not_configured',
    );
    this.name = 'RedisClusterNotConfiguredError';
  }
}

/** REDIS_URL leads to a replica: it refuses every write this service makes. */
export class RedisReplicaError extends FatalError {
  constructor(readonly address: string) {
    super(
      `REDIS_URL leads to a replica (${address}, INFO replication role:slave), which refuses every ` +
        'write: point REDIS_URL at the primary (behind a failover address that still leads to the ' +
        'old primary, try again once it has moved; docs/operations.md, "Redis outages").',
      'redis_is_replica',
    );
    this.name = 'RedisReplicaError';
  }
}

/**
 * Refuses a standalone configuration against a cluster node (INFO cluster says
 * `cluster_enabled:1`): it would start, then fail every multi-key script; and against a replica
 * (INFO replication says `role:slave`): every write would be refused, each one read as Redis
 * unreachable. A server that does not answer INFO (some managed proxies) is taken as a standalone
 * primary. `address`: how to name the server in the error (no credentials).
 */
export async function assertRedisTopology(redis: Redis, address = 'REDIS_URL'): Promise<void> {
  if (redis.isCluster) return;
  const info = (section: string) =>
    redis.info(section).catch((err: unknown) => {
      if (isReplyError(err)) return '';
      throw err;
    });
  if (/^cluster_enabled:1\s*$/m.test(await info('cluster'))) {
    throw new RedisClusterNotConfiguredError();
  }
  if (/^role:slave\s*$/m.test(await info('replication'))) throw new RedisReplicaError(address);
}

/** A node of REDIS_CLUSTER_NODES answers as a standalone server (`cluster_enabled:0`). */
export class RedisNotAClusterError extends FatalError {
  constructor(node: string) {
    super(
      `REDIS_CLUSTER_NODES names ${node}, which is not a Redis Cluster node (cluster_enabled:0): ` +
        'a cluster client would wait for its slots forever. Unset REDIS_CLUSTER_NODES to use it ' +
        'through REDIS_URL, or list the nodes of a cluster (docs/operations.md, "Redis Cluster").',
      'redis_not_a_cluster',
    );
    this.name = 'RedisNotAClusterError';
  }
}

/**
 * Before anything waits on the cluster client: asks each seed node of REDIS_CLUSTER_NODES, over a
 * one-shot connection, whether it runs in cluster mode. A standalone server there would leave
 * the cluster client retrying its slot map forever, and start-up would hang without a word. A
 * node that cannot be reached is skipped (an outage is the cluster client's to wait out); one that
 * answers `cluster_enabled:0` is refused, by name.
 */
export async function assertClusterSeeds(target: RedisTarget): Promise<void> {
  for (const node of target.clusterNodes ?? []) {
    const conn = connectNode(target.url, node);
    conn.on('error', () => undefined); // the outcome is read from the calls below
    let info: string;
    try {
      await conn.connect();
      info = await conn.info('cluster');
    } catch {
      continue;
    } finally {
      conn.disconnect();
    }
    if (/^cluster_enabled:0\s*$/m.test(info)) {
      throw new RedisNotAClusterError(`${node.host}:${node.port}`);
    }
  }
}
