/**
 * A throwaway local Redis Cluster for tests and the cluster benchmark: three (or, with replicas,
 * six) `redis-server --cluster-enabled yes` processes on free ports below 55535 (the cluster bus
 * listens on port + 10000), each with its own temp dir and cluster config file, no persistence,
 * joined with `redis-cli --cluster create ... --cluster-yes`. Killed by `close()` and, like every
 * spawned server, at process exit (test/support/redis-server.ts). Never touches 127.0.0.1:6379.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { spawnRedisServer, type RedisServerHandle } from './redis-server.ts';
import { until } from './poll.ts';

/** One node of the cluster. */
export interface ClusterNodeHandle {
  port: number;
  server: RedisServerHandle;
}

/** A running local cluster. */
export interface LocalCluster {
  nodes: ClusterNodeHandle[];
  /** `127.0.0.1:p1,127.0.0.1:p2,...`: the value of REDIS_CLUSTER_NODES. */
  nodesEnv: string;
  /** REDIS_URL (the first node), REDIS_CLUSTER_NODES and REDIS_SHARDS for an app on this cluster. */
  env(shards: number): Record<string, string>;
  /** A plain connection to one node (for CLUSTER commands, INFO, SCAN of that node). */
  node(port: number): Redis;
  /** Ports of the current masters (asked of a live node; changes after a failover). */
  masters(): Promise<number[]>;
  /** The master port serving `slot`. */
  masterOf(slot: number): Promise<number>;
  /** Resolves once every live node reports `cluster_state:ok` and `masters` masters own slots. */
  waitHealthy(masters?: number): Promise<void>;
  /**
   * Resolves once a replica of the master on `port` is online and has everything the master had
   * written when this was called (replication is asynchronous: a replica still in its first sync
   * has nothing, and promoting it loses the master's data — which the product rightly reports as
   * a data loss).
   */
  waitReplicated(port: number): Promise<void>;
  /**
   * Starts one more cluster-enabled server and joins it as a master with no slots (what
   * `redis-cli --cluster add-node` does when a deployment outgrows its masters); resolves once
   * every node knows it. Returns its port.
   */
  addMaster(): Promise<number>;
  /**
   * Moves `slot` and its keys to the master on `toPort` the way `redis-cli --cluster reshard`
   * does (IMPORTING on the target, MIGRATING on the source, `MIGRATE` a few keys at a time, then
   * the slot assigned on every node), pausing `pauseMs` between batches of `batch` keys so that
   * clients meet the migration window: ASK redirections and TRYAGAIN replies. Returns how many
   * keys it moved.
   */
  migrateSlot(
    slot: number,
    toPort: number,
    opts?: { batch?: number; pauseMs?: number },
  ): Promise<number>;
  close(): Promise<void>;
}

const HIGHEST_PORT = 55_534;

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port below 55535 whose cluster bus port (+10000) is free too. */
async function pickPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * (HIGHEST_PORT - 10_000 - 20_000));
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) {
      taken.add(port);
      return port;
    }
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}:\n${out}`)),
    );
  });
}

/** Starts and joins a local cluster of 3 masters (and one replica each with `replicas: 1`). */
export async function startLocalCluster(opts: { replicas?: 0 | 1 } = {}): Promise<LocalCluster> {
  const replicas = opts.replicas ?? 0;
  const count = 3 * (1 + replicas);
  const taken = new Set<number>();
  const nodes: ClusterNodeHandle[] = [];
  const admin = new Map<number, Redis>();
  const close = async () => {
    for (const c of admin.values()) c.disconnect();
    admin.clear();
    await Promise.all(nodes.map((n) => n.server.close()));
  };
  const spawnNode = async (): Promise<ClusterNodeHandle> => {
    const port = await pickPort(taken);
    const server = await spawnRedisServer({
      port,
      extraArgs: [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '2000',
        // A replica promotes even if it lost contact with its master a while ago.
        '--cluster-replica-validity-factor',
        '0',
      ],
    });
    const handle = { port, server };
    nodes.push(handle);
    return handle;
  };
  try {
    for (let i = 0; i < count; i++) await spawnNode();
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
  } catch (err) {
    await close();
    throw err;
  }
  const node = (port: number) => {
    let c = admin.get(port);
    if (!c) {
      c = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1 });
      c.on('error', () => undefined);
      admin.set(port, c);
    }
    return c;
  };
  const live = () => nodes.filter((n) => n.server.isOpen());
  const slotMap = async () => {
    const first = live()[0];
    if (!first) throw new Error('no live cluster node');
    return (await node(first.port).call('CLUSTER', 'SLOTS')) as [
      number,
      number,
      [string, number],
    ][];
  };
  const cluster: LocalCluster = {
    nodes,
    nodesEnv: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    env: (shards) => ({
      REDIS_URL: `redis://127.0.0.1:${nodes[0]!.port}`,
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      REDIS_SHARDS: String(shards),
    }),
    node,
    async masters() {
      return [...new Set((await slotMap()).map((r) => r[2][1]))].sort((a, b) => a - b);
    },
    async masterOf(slot) {
      const row = (await slotMap()).find((r) => r[0] <= slot && slot <= r[1]);
      if (!row) throw new Error(`no master serves slot ${slot}`);
      return row[2][1];
    },
    async waitHealthy(masters = 3) {
      await until(
        async () => {
          for (const n of live()) {
            const info = (await node(n.port)
              .call('CLUSTER', 'INFO')
              .catch(() => '')) as string;
            if (!info.includes('cluster_state:ok')) return false;
          }
          const ms = await cluster.masters().catch(() => []);
          return ms.length === masters && ms.every((p) => live().some((n) => n.port === p));
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'cluster healthy' },
      );
    },
    async waitReplicated(port) {
      const offsetOf = (info: string) => Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? NaN);
      const target = offsetOf((await node(port).call('INFO', 'replication')) as string);
      await until(
        async () => {
          const info = (await node(port).call('INFO', 'replication')) as string;
          // slave0:ip=127.0.0.1,port=…,state=online,offset=…,lag=…
          return [...info.matchAll(/^slave\d+:.*state=online,offset=(\d+)/gm)].some(
            (m) => Number(m[1]) >= target,
          );
        },
        { timeoutMs: 30_000, intervalMs: 50, what: `a replica of ${port} in sync` },
      );
    },
    async addMaster() {
      const first = live()[0];
      if (!first) throw new Error('no live cluster node');
      const { port } = await spawnNode();
      await run('redis-cli', [
        '--cluster',
        'add-node',
        `127.0.0.1:${port}`,
        `127.0.0.1:${first.port}`,
      ]);
      const ids = await Promise.all(
        live().map(async (n) => (await node(n.port).call('CLUSTER', 'MYID')) as string),
      );
      await until(
        async () => {
          for (const n of live()) {
            const known = (await node(n.port).call('CLUSTER', 'NODES')) as string;
            if (!ids.every((id) => known.includes(id))) return false;
          }
          return true;
        },
        {
          timeoutMs: 30_000,
          intervalMs: 100,
          what: `every node and the new master ${port} know each other`,
        },
      );
      // It answers (MIGRATE included) only once it has the slot map: `cluster_state:ok`.
      await cluster.waitHealthy((await cluster.masters()).length);
      return port;
    },
    async migrateSlot(slot, toPort, opts = {}) {
      const batch = opts.batch ?? 10;
      const pauseMs = opts.pauseMs ?? 0;
      const fromPort = await cluster.masterOf(slot);
      if (fromPort === toPort) return 0;
      const from = node(fromPort);
      const to = node(toPort);
      const fromId = (await from.call('CLUSTER', 'MYID')) as string;
      const toId = (await to.call('CLUSTER', 'MYID')) as string;
      await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
      await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
      let moved = 0;
      for (;;) {
        const keys = (await from.call('CLUSTER', 'GETKEYSINSLOT', slot, batch)) as string[];
        if (keys.length === 0) break;
        await from.call('MIGRATE', '127.0.0.1', toPort, '', 0, 5_000, 'REPLACE', 'KEYS', ...keys);
        moved += keys.length;
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      }
      // The target first (it then answers for the slot), then the source, then everyone else.
      await to.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
      await from.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
      for (const n of live()) {
        if (n.port === fromPort || n.port === toPort) continue;
        await node(n.port)
          .call('CLUSTER', 'SETSLOT', slot, 'NODE', toId)
          .catch(() => undefined);
      }
      return moved;
    },
    close,
  };
  await cluster.waitHealthy(3);
  return cluster;
}
