/**
 * Redis connections for BullMQ and the stores: one standalone server (REDIS_URL) or a Redis
 * Cluster (REDIS_CLUSTER_NODES, ioredis's cluster client). Everything above this file sees the
 * same command interface: on a cluster every key of one script, MULTI or pipeline carries one hash
 * tag (infra/redis/shards.ts), which is all the cluster client needs to route it.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** How long one connection attempt may take before it counts as failed. */
const CONNECT_TIMEOUT_MS = 2_000;

/**
 * How long a command on a fail-fast connection may wait for its answer. A Redis that hangs (a
 * frozen process, a partition that resets nothing) closes no connection, so without it a request
 * would wait for ever and its commands run whenever Redis woke. Long enough for the slowest
 * command the stores send under load (a batch's intents, 1,000 rows a script call).
 */
export const FAIL_FAST_COMMAND_TIMEOUT_MS = 10_000;

/** A cluster seed node (`host:port` of REDIS_CLUSTER_NODES). */
export interface ClusterNode {
  host: string;
  port: number;
}

/** Where Redis is: REDIS_URL, or the cluster's seed nodes (credentials and TLS from REDIS_URL). */
export interface RedisTarget {
  url: string;
  clusterNodes?: readonly ClusterNode[];
}

/**
 * A connection as BullMQ's workers require it (`maxRetriesPerRequest: null`: blocking commands
 * must not give up): a command waits through an outage. Reconnects with a capped delay; callers
 * close it with `quit()`.
 *
 * On a cluster the result is an ioredis `Cluster` typed as `Redis`: both implement the same
 * commands, and the stores, the queues and the stream consumers use only commands that name their
 * keys (routed by slot) or that any node answers. The few node-wide operations (eviction policy,
 * script loading, CPU figures) ask every master through {@link mastersOf}.
 */
export function createRedis(target: string | RedisTarget, opts: RedisOptions = {}): Redis {
  const t = typeof target === 'string' ? { url: target } : target;
  const options: RedisOptions = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(times * 200, 5_000),
    ...opts,
  };
  if (!t.clusterNodes || t.clusterNodes.length === 0) {
    return new Redis(t.url, { reconnectOnError: reconnectWhenReadOnly, ...options });
  }
  return createCluster(t.url, t.clusterNodes, options) as unknown as Redis;
}

/**
 * A standalone server behind one address failed over (a managed Redis, Sentinel behind a DNS
 * name, a proxy): the new primary is elsewhere, but the connections opened before still lead to
 * the old one, now a replica, which answers every write `READONLY` while its socket stays open —
 * for ever, with nothing closing it. Such a reply makes the connection reconnect (through the
 * address, to the new primary). The refused command is not sent again: it was not run (a replica
 * runs no write), and its caller gets the error (infra/redis/health.ts counts it as Redis
 * unreachable: a request answers 503, a job is retried). A cluster answers MOVED instead, which
 * its client follows.
 */
export function reconnectWhenReadOnly(err: Error): boolean | 1 | 2 {
  return err.message.startsWith('READONLY ') ? 1 : false;
}

/**
 * A connection whose commands fail fast while Redis is unreachable (after one reconnection
 * attempt) instead of queueing for the whole outage: the stores and the queues' producers, so an
 * HTTP request or a CLI command answers "Redis unavailable" in bounded time. A command that fails
 * this way is dropped from the offline queue, so it never runs later behind the caller's back.
 * One already sent to a Redis that stopped answering fails after {@link FAIL_FAST_COMMAND_TIMEOUT_MS}
 * (and may still run if that Redis wakes up: as for any 503, a retry with the same key is safe).
 */
export function createFailFastRedis(target: string | RedisTarget, opts: RedisOptions = {}): Redis {
  const redis = createRedis(target, {
    maxRetriesPerRequest: 1,
    commandTimeout: FAIL_FAST_COMMAND_TIMEOUT_MS,
    ...opts,
  });
  if (isCluster(redis)) {
    // The cluster client queues a command while the cluster is unreachable however long that
    // lasts (`maxRetriesPerRequest` reaches only its per-node connections), then runs it when the
    // cluster is back. Once it has been ready, a command while it is not is refused at once
    // instead: what the standalone connection does after its one reconnection attempt. Before
    // the first ready, commands wait (start-up waits for Redis anyway).
    const cluster = redis as unknown as Cluster;
    cluster.once('ready', () => {
      cluster.options.enableOfflineQueue = false;
    });
    // A duplicate (BullMQ makes one per worker and per blocking reader) is a client of its own
    // and starts with the default: it waits for its own first ready.
    const duplicate: (nodes?: ClusterNode[], options?: ClusterOptions) => Cluster =
      cluster.duplicate.bind(cluster);
    (cluster as { duplicate: unknown }).duplicate = (
      nodes?: ClusterNode[],
      options?: ClusterOptions,
    ): Cluster => duplicate(nodes, { enableOfflineQueue: true, ...options });
  }
  return redis;
}

/**
 * A one-shot plain connection to one node (of REDIS_CLUSTER_NODES), with REDIS_URL's credentials
 * and TLS: no reconnection, no offline queue, for a check that must not wait.
 */
export function connectNode(url: string, node: ClusterNode): Redis {
  return new Redis({
    host: node.host,
    port: node.port,
    ...credentialsOf(url),
    ...(url.startsWith('rediss://') ? { tls: {} } : {}),
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: true,
    retryStrategy: () => null,
    lazyConnect: true,
  });
}

function createCluster(url: string, nodes: readonly ClusterNode[], options: RedisOptions): Cluster {
  const { retryStrategy, enableAutoPipelining, enableReadyCheck, ...perNode } = options;
  const auth = credentialsOf(url);
  const clusterOptions: ClusterOptions = {
    clusterRetryStrategy: retryStrategy ?? null,
    enableReadyCheck: enableReadyCheck ?? true,
    // A master killed and replaced by its replica: MOVED/CLUSTERDOWN replies are retried after
    // the slot map refreshes, within the command's own retry budget.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    // A slot being moved to another master (a resharding): a script whose keys are split between
    // the two answers TRYAGAIN until they are together again, and while the nodes learn the new
    // owner a stale slot map can send a command back and forth with MOVED. Both are retried after
    // a pause, within the command's redirection budget (16); past it the command fails as "Redis
    // unavailable" (health.ts): nothing of it ran (test/integration/cluster-reshard.test.ts).
    retryDelayOnTryAgain: 200,
    retryDelayOnMoved: 100,
    slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
    ...(enableAutoPipelining !== undefined ? { enableAutoPipelining } : {}),
    redisOptions: {
      ...perNode,
      ...auth,
      ...(url.startsWith('rediss://') ? { tls: {} } : {}),
    },
  };
  return withQuietAsking(
    new Cluster(
      nodes.map((n) => ({ host: n.host, port: n.port })),
      clusterOptions,
    ),
  );
}

/**
 * ioredis's cluster client follows an ASK redirection (a slot being moved) by sending `ASKING` to
 * the importing node and then the command, and drops the promise of the `ASKING`. When that
 * connection closes before the reply (the client replaces a connection a stale redirection
 * pointed back to; the slot map changes under it), the dropped promise rejects with `Connection
 * is closed.` and nothing handles it: Node ends the process (an unhandled rejection), so every
 * worker and API process crashed during a resharding. The command after it fails on the same
 * connection and reaches its caller, so the `ASKING` reply itself is never needed: its rejection
 * is handled here, on every node connection of this client and of its duplicates (BullMQ makes one
 * per worker and per blocking reader). test/integration/cluster-reshard.test.ts.
 */
function withQuietAsking(cluster: Cluster): Cluster {
  const quiet = (node: Redis) => {
    if (quietened.has(node)) return;
    quietened.add(node);
    const asking = node.asking.bind(node);
    node.asking = (...args: Parameters<Redis['asking']>) => {
      const reply = asking(...args);
      reply.catch(() => undefined);
      return reply;
    };
  };
  // Node connections made from now on (a master that joins, a redirection's target), and those
  // the constructor already made (the seeds).
  cluster.on('+node', quiet);
  for (const node of cluster.nodes('all')) quiet(node);
  const duplicate: Cluster['duplicate'] = cluster.duplicate.bind(cluster);
  cluster.duplicate = (...args: Parameters<Cluster['duplicate']>) =>
    withQuietAsking(duplicate(...args));
  return cluster;
}

const quietened = new WeakSet<Redis>();

/** Username and password of REDIS_URL, used for every node of a cluster. */
function credentialsOf(url: string): { username?: string; password?: string } {
  try {
    const u = new URL(url);
    return {
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    };
  } catch {
    return {};
  }
}

/** True when `redis` is a cluster client. */
export function isCluster(redis: Redis): boolean {
  return redis.isCluster;
}

/**
 * The connections to every master (a cluster) or the connection itself (standalone): for the
 * node-wide operations (CONFIG, INFO, SCRIPT LOAD, SCAN) that a cluster client sends to one random
 * node. A cluster client learns its masters from its first slot map: until then it knows none,
 * and a check or a SCAN over that empty list would find nothing wrong and no key (a fresh CLI
 * process's `billing payments reindex` reported 0; a start-up during a cluster outage passed the
 * eviction check unasked). So a cluster client not ready yet is waited for first, by one PING
 * (which waits like any command before the first ready, and is refused during an outage after it
 * on a fail-fast connection), and a client that still knows no master is an error.
 */
export async function mastersOf(redis: Redis): Promise<Redis[]> {
  if (!isCluster(redis)) return [redis];
  const cluster = redis as unknown as Cluster;
  if (cluster.status !== 'ready') await cluster.ping();
  const masters = cluster.nodes('master');
  if (masters.length === 0) {
    throw new Error('the Redis Cluster client knows no master: its slot map is empty');
  }
  return masters;
}
