/**
 * `npm run bench:cluster` (or `npx tsx bench/cluster.ts --jobs 3000 --concurrency 32`): payments
 * per second through the whole pipeline (createPayment → the worker role → the sandbox → final)
 * on one standalone `redis-server`, then on a local three-master Redis Cluster with REDIS_SHARDS=1
 * and with REDIS_SHARDS=3, in one run, with the Redis CPU each master spent (INFO cpu) per
 * payment. docs/operations.md, "Redis Cluster". One worker process runs in this process, so on a
 * small machine the Node side bounds payments/s; the Redis CPU per master is the sizing figure:
 * it shows how the shards split the one-thread Redis cost over the masters.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config/config.ts';
import { openApp, startRoles } from '../src/app/composition.ts';
import { createPayment, createPaymentDeps } from '../src/payments/create.ts';
import { createLogger } from '../src/infra/logger.ts';
import { startSandbox } from '../src/sandbox/index.ts';
import { spawnRedisServer } from '../test/support/redis-server.ts';
import { startLocalCluster } from '../test/support/redis-cluster.ts';

const SECRET_KEY = 'sk_test_bench_cluster';

interface Phase {
  label: string;
  jobs: number;
  seconds: number;
  /** Redis CPU ms per payment, per master port (only masters that worked). */
  cpuPerMaster: Map<number, number>;
}

/** used_cpu_sys + used_cpu_user of one server, in seconds. */
async function redisCpu(conn: Redis): Promise<number> {
  const info = await conn.info('cpu');
  const get = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return get('used_cpu_sys') + get('used_cpu_user');
}

async function produce(count: number, parallel: number, task: (i: number) => Promise<void>) {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
}

async function runPhase(opts: {
  label: string;
  env: Record<string, string>;
  masters: Redis[];
  sandboxUrl: string;
  jobs: number;
  concurrency: number;
}): Promise<Phase> {
  const config = loadConfig({
    QUEUE_PREFIX: `bench-cl-${opts.label}`,
    SAYSWITCH_BASE_URL: opts.sandboxUrl,
    SAYSWITCH_SECRET_KEY: SECRET_KEY,
    SAYSWITCH_TIMEOUT_MS: '30000',
    SAYSWITCH_RATE_LIMIT_PER_SEC: '10000',
    WORKER_CONCURRENCY: String(opts.concurrency),
    DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
    API_TOKEN: 'bench-api-token-0123456789',
    LOG_LEVEL: 'silent',
    ...opts.env,
  });
  const app = openApp(config, createLogger({ level: 'silent' }));
  const running = await startRoles(app, ['worker']);
  const deps = createPaymentDeps(app);
  const cpu0 = await Promise.all(opts.masters.map(redisCpu));
  const started = performance.now();
  await produce(opts.jobs, 16, async (i) => {
    const r = await createPayment(deps, {
      type: 'charge',
      key: `${opts.label}${i}`,
      email: 'bench@example.com',
      amount: '1500.00',
      currency: 'NGN',
      card_token: 'tok_bench_0123456789abcdef',
    });
    if (r.status !== 'created') throw new Error(`payment ${i}: ${r.status}`);
  });
  for (;;) {
    const counts = await app.store.countByState();
    if (counts.succeeded + counts.failed + counts.needs_review >= opts.jobs) break;
    if (performance.now() - started > 600_000) throw new Error(`${opts.label}: timed out`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu1 = await Promise.all(opts.masters.map(redisCpu));
  await running.stop(10_000);
  await app.close();
  const cpuPerMaster = new Map<number, number>();
  opts.masters.forEach((m, i) => {
    cpuPerMaster.set(m.options.port ?? 0, ((cpu1[i]! - cpu0[i]!) * 1000) / opts.jobs);
  });
  return { label: opts.label, jobs: opts.jobs, seconds, cpuPerMaster };
}

export async function main(): Promise<Phase[]> {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string', default: '3000' },
      concurrency: { type: 'string', default: '32' },
    },
    strict: false,
  });
  const jobs = Number(values.jobs);
  const concurrency = Number(values.concurrency);
  const sandbox = await startSandbox({ port: 0, secretKey: SECRET_KEY });
  const phases: Phase[] = [];
  try {
    const server = await spawnRedisServer();
    const conn = new Redis(server.url);
    try {
      phases.push(
        await runPhase({
          label: 'standalone',
          env: { REDIS_URL: server.url },
          masters: [conn],
          sandboxUrl: sandbox.url,
          jobs,
          concurrency,
        }),
      );
    } finally {
      conn.disconnect();
      await server.close();
    }
    const cluster = await startLocalCluster();
    try {
      const masters = (await cluster.masters()).map(
        (port) => new Redis({ port, host: '127.0.0.1' }),
      );
      for (const shards of [1, 3]) {
        phases.push(
          await runPhase({
            label: `cluster-${shards}shard`,
            env: {
              REDIS_URL: `redis://127.0.0.1:${cluster.nodes[0]!.port}`,
              REDIS_CLUSTER_NODES: cluster.nodesEnv,
              REDIS_SHARDS: String(shards),
            },
            masters,
            sandboxUrl: sandbox.url,
            jobs,
            concurrency,
          }),
        );
      }
      for (const m of masters) m.disconnect();
    } finally {
      await cluster.close();
    }
  } finally {
    await sandbox.close();
  }
  console.log(
    `\n${jobs} charges per phase, worker concurrency ${concurrency}, one worker process\n`,
  );
  console.log('| phase | payments/s | Redis CPU ms per payment, per master | busiest master |');
  console.log('| ----- | ---------- | ------------------------------------ | -------------- |');
  for (const p of phases) {
    const per = [...p.cpuPerMaster.values()];
    const busiest = Math.max(...per);
    console.log(
      `| ${p.label} | ${Math.round(p.jobs / p.seconds)} | ${per.map((c) => c.toFixed(3)).join(' / ')} | ${busiest.toFixed(3)} ms → ceiling ≈ ${Math.round(1000 / busiest)}/s |`,
    );
  }
  return phases;
}

if (process.argv[1]?.endsWith('cluster.ts')) {
  await main();
  process.exit(0);
}
