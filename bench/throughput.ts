/**
 * End-to-end charge throughput against a bare BullMQ baseline measured in the same run, on the
 * same (throwaway) Redis, at the same worker concurrency.
 *
 *   npx tsx bench/throughput.ts [--jobs 10000] [--concurrency 32] [--producers 32]
 *                               [--sandbox child|inproc] [--phase-timeout-ms 180000]
 *
 * pipeline: createPayment (validation, card token sealed, request HMAC, intent created by Lua,
 *   job enqueued) → the real `worker` role from composition (claim with lease, unseal, rate
 *   limiter, AES-256-CBC encrypted HTTP call to the sandbox, decrypt, transition to `succeeded`
 *   with its event appended to the events stream in the same Lua script).
 * baseline: Queue.add of a payload of the same shape with a deterministic id → a no-op Worker.
 *
 * Both phases enqueue and consume at once (`--producers` adds in flight), so throughput is
 * jobs / (first enqueue → last completion). Latency is enqueue-to-final: the intent's `createdAt`
 * to its final history entry (pipeline), the job's `timestamp` to `finishedOn` (baseline); when
 * the producers outrun the workers it includes the time spent waiting in the queue.
 *
 * The sandbox runs in a child process by default: it does the server half of the crypto and HTTP,
 * which in production runs on Sayswitch's machines, so sharing the bench's event loop would
 * charge the pipeline for work that is not ours. `--sandbox inproc` measures that case too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config/config.ts';
import { openApp, startRoles } from '../src/app/composition.ts';
import { createPayment } from '../src/payments/create.ts';
import { createLogger } from '../src/infra/logger.ts';
import { startSandbox } from '../src/sandbox/index.ts';
import { spawnRedisServer } from '../test/support/redis-server.ts';

const SECRET_KEY = 'sk_test_bench_throughput';
const ENCRYPTION = {
  key: 'bench-throughput-key-0123456789a',
  iv: 'bench-thru-iv-16',
  encoding: 'hex',
} as const;
const WARMUP_JOBS = 500;

export interface ThroughputOptions {
  jobs: number;
  concurrency: number;
  producers: number;
  sandbox: 'child' | 'inproc';
  phaseTimeoutMs: number;
}

export interface PhaseResult {
  done: number;
  seconds: number;
  jobsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  timedOut: boolean;
  /** Redis commands per job, those run inside Lua scripts included, and script calls per job. */
  redisPerJob: { commands: number; scripts: number };
  /** CPU milliseconds per job in this process, in redis-server and in the sandbox child. */
  cpuMsPerJob: { node: number; redis: number | undefined; sandbox: number | undefined };
}

export interface ThroughputResult {
  pipeline: PhaseResult;
  baseline: PhaseResult;
  ratio: number;
}

/** CPU seconds a process has used so far, from /proc (Linux); undefined elsewhere. */
function procCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the `(comm)`: utime and stime are the 12th and 13th, in clock ticks (100 Hz).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Where the CPU of a phase went: seconds used by this process, Redis and the sandbox child. */
interface CpuSnapshot {
  self: number;
  redis: number | undefined;
  sandbox: number | undefined;
}

interface CpuProbe {
  redisPid: number | undefined;
  sandboxPid: number | undefined;
  /** A plain connection for INFO commandstats (not one the phase itself uses). */
  info: Redis;
}

/** Commands Redis has executed so far (those run inside scripts included), and script calls. */
async function redisCommands(info: Redis): Promise<{ all: number; scripts: number }> {
  const text = await info.info('commandstats');
  let all = 0;
  let scripts = 0;
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    all += Number(m[2]);
    if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(m[1] ?? ''))
      scripts += Number(m[2]);
  }
  return { all, scripts };
}

function minus(a: { all: number; scripts: number }, b: { all: number; scripts: number }) {
  return { all: a.all - b.all, scripts: a.scripts - b.scripts };
}

function cpuNow(probe: CpuProbe): CpuSnapshot {
  const u = process.cpuUsage();
  return {
    self: (u.user + u.system) / 1e6,
    redis: procCpuSeconds(probe.redisPid),
    sandbox: procCpuSeconds(probe.sandboxPid),
  };
}

function cpuPerJobMs(a: CpuSnapshot, b: CpuSnapshot, jobs: number): PhaseResult['cpuMsPerJob'] {
  const per = (x: number | undefined, y: number | undefined) =>
    x === undefined || y === undefined || jobs === 0 ? undefined : ((y - x) * 1000) / jobs;
  return {
    node: per(a.self, b.self) ?? 0,
    redis: per(a.redis, b.redis),
    sandbox: per(a.sandbox, b.sandbox),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function summarize(
  done: number,
  ms: number,
  latencies: number[],
  timedOut: boolean,
  cpu: [CpuSnapshot, CpuSnapshot],
  commands: { all: number; scripts: number },
): PhaseResult {
  const sorted = latencies.sort((a, b) => a - b);
  return {
    redisPerJob: {
      commands: done === 0 ? 0 : commands.all / done,
      scripts: done === 0 ? 0 : commands.scripts / done,
    },
    cpuMsPerJob: cpuPerJobMs(cpu[0], cpu[1], done),
    done,
    seconds: ms / 1000,
    jobsPerSec: done / (ms / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    timedOut,
  };
}

/** Runs `count` calls of `task(i)` with at most `parallel` in flight. */
async function produce(
  count: number,
  parallel: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
}

/** Resolves once `target` completions were counted, or at the deadline with what there is. */
function completions(
  worker: Worker,
  target: number,
  timeoutMs: number,
): { count(): number; done: Promise<boolean> } {
  let n = 0;
  let finish: (ok: boolean) => void = () => undefined;
  const done = new Promise<boolean>((resolve) => (finish = resolve));
  const timer = setTimeout(() => finish(false), timeoutMs);
  worker.on('completed', () => {
    if (++n >= target) {
      clearTimeout(timer);
      finish(true);
    }
  });
  return { count: () => n, done };
}

/** Child mode: an encrypted sandbox, its URL on stdout, until SIGTERM. */
async function serveSandbox(): Promise<void> {
  const sb = await startSandbox({ port: 0, secretKey: SECRET_KEY, encryption: ENCRYPTION });
  process.stdout.write(`${JSON.stringify({ url: sb.url })}\n`);
  process.once('SIGTERM', () => {
    void sb.close().then(() => process.exit(0));
  });
}

async function startSandboxFor(
  mode: 'child' | 'inproc',
): Promise<{ url: string; pid?: number; stop(): Promise<void> }> {
  if (mode === 'inproc') {
    const sb = await startSandbox({ port: 0, secretKey: SECRET_KEY, encryption: ENCRYPTION });
    return { url: sb.url, stop: () => sb.close() };
  }
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), '--serve-sandbox'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sandbox child did not start')), 30_000);
    let out = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      resolve((JSON.parse(out.slice(0, nl)) as { url: string }).url);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sandbox child exited with ${code}`));
    });
  });
  return {
    url,
    ...(child.pid !== undefined ? { pid: child.pid } : {}),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function runBaseline(
  redisUrl: string,
  probe: CpuProbe,
  opts: ThroughputOptions,
  label: string,
  jobs: number,
): Promise<PhaseResult> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const prefix = `bench-base-${label}`;
  const queue = new Queue('charges', {
    connection,
    prefix,
    // The dispatcher's retention, so both sides keep the same history in Redis.
    defaultJobOptions: { removeOnComplete: { age: 24 * 3600, count: 50_000 } },
  });
  // The baseline does nothing: what is measured is BullMQ's own fetch-and-complete cycle.
  const worker = new Worker('charges', () => Promise.resolve(), {
    connection,
    prefix,
    concurrency: opts.concurrency,
  });
  await worker.waitUntilReady();
  const latencies: number[] = [];
  worker.on('completed', (job) => {
    if (job.finishedOn !== undefined) latencies.push(job.finishedOn - job.timestamp);
  });
  const counter = completions(worker, jobs, opts.phaseTimeoutMs);
  const commands0 = await redisCommands(probe.info);
  const cpu0 = cpuNow(probe);
  const started = performance.now();
  await produce(jobs, opts.producers, async (i) => {
    await queue.add(
      'submit',
      { key: `api_${label}${i}`, attempt: 1, amount: 150_000, currency: 'NGN' },
      { jobId: `api_${label}${i}_1-q1`, attempts: 8, backoff: { type: 'catalog' } },
    );
  });
  const ok = await counter.done;
  const ms = performance.now() - started;
  const cpu1 = cpuNow(probe);
  const commands = minus(await redisCommands(probe.info), commands0);
  await worker.close();
  await queue.close();
  await connection.quit();
  return summarize(counter.count(), ms, latencies, !ok, [cpu0, cpu1], commands);
}

async function runPipeline(
  redisUrl: string,
  sandboxUrl: string,
  probe: CpuProbe,
  opts: ThroughputOptions,
  label: string,
  jobs: number,
): Promise<PhaseResult> {
  const config = loadConfig({
    NODE_ENV: 'development',
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: `bench-pipe-${label}`,
    SAYSWITCH_BASE_URL: sandboxUrl,
    SAYSWITCH_SECRET_KEY: SECRET_KEY,
    SAYSWITCH_ENCRYPTION_KEY: ENCRYPTION.key,
    SAYSWITCH_ENCRYPTION_IV: ENCRYPTION.iv,
    SAYSWITCH_TIMEOUT_MS: '30000',
    // The limiter stays in the path (one Redis call per gateway call), high enough not to bind.
    SAYSWITCH_RATE_LIMIT_PER_SEC: '10000',
    WORKER_CONCURRENCY: String(opts.concurrency),
    DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
    API_TOKEN: 'bench-api-token-0123456789',
    LOG_LEVEL: 'silent',
  });
  const app = openApp(config, createLogger({ level: 'silent' }));
  const running = await startRoles(app, ['worker']);
  const charges = running.workers.find((w) => w.name === 'charges');
  if (!charges) throw new Error('no charges worker');
  const deps = {
    store: app.store,
    dispatcher: app.dispatcher,
    sealer: app.sealer,
    clock: app.clock,
    hashKey: app.config.dataEncryptionKey,
  };
  const counter = completions(charges, jobs, opts.phaseTimeoutMs);
  const commands0 = await redisCommands(probe.info);
  const cpu0 = cpuNow(probe);
  const started = performance.now();
  await produce(jobs, opts.producers, async (i) => {
    const r = await createPayment(deps, {
      type: 'charge',
      key: `${label}${i}`,
      email: 'bench@example.com',
      amount: '1500.00',
      currency: 'NGN',
      card_token: 'tok_bench_0123456789abcdef',
    });
    if (r.status !== 'created') throw new Error(`payment ${i}: ${r.status}`);
  });
  const ok = await counter.done;
  const ms = performance.now() - started;
  const cpu1 = cpuNow(probe);
  const commands = minus(await redisCommands(probe.info), commands0);
  await running.stop(10_000);

  // Outside the timed window: every intent's enqueue-to-final latency, and a sanity check that
  // each job really ended in `succeeded`.
  const latencies: number[] = [];
  let succeeded = 0;
  await produce(jobs, 64, async (i) => {
    const key = `api_${label}${i}`;
    const [intent, history] = await Promise.all([app.store.get(key), app.store.history(key)]);
    const last = history.at(-1);
    if (intent?.state === 'succeeded' && last) {
      succeeded++;
      latencies.push(last.at - intent.createdAt);
    }
  });
  await app.close();
  if (ok && succeeded !== jobs) throw new Error(`only ${succeeded}/${jobs} intents succeeded`);
  return summarize(counter.count(), ms, latencies, !ok, [cpu0, cpu1], commands);
}

function versions(redisInfo: string): Record<string, string> {
  const bullmq = JSON.parse(
    readFileSync(new URL('../node_modules/bullmq/package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  return {
    node: process.version,
    redis: /redis_version:(\S+)/.exec(redisInfo)?.[1] ?? 'unknown',
    bullmq: bullmq.version,
  };
}

function line(name: string, r: PhaseResult): string {
  const c = r.cpuMsPerJob;
  const ms = (v: number | undefined) => (v === undefined ? 'n/a' : v.toFixed(2));
  return (
    `${name.padEnd(9)} ${r.done} jobs in ${r.seconds.toFixed(2)} s: ` +
    `${Math.round(r.jobsPerSec)} jobs/s, enqueue-to-final p50 ${r.p50Ms.toFixed(0)} ms, ` +
    `p99 ${r.p99Ms.toFixed(0)} ms${r.timedOut ? ' (TIMED OUT: partial)' : ''}\n` +
    `${''.padEnd(10)}CPU per job: node ${ms(c.node)} ms, redis ${ms(c.redis)} ms` +
    (c.sandbox !== undefined ? `, sandbox ${ms(c.sandbox)} ms` : ' (sandbox included in node)') +
    `\n${''.padEnd(10)}Redis per job: ${r.redisPerJob.scripts.toFixed(1)} script calls, ` +
    `${r.redisPerJob.commands.toFixed(1)} commands (those inside scripts included)`
  );
}

/**
 * Both phases are CPU-bound when the machine is small: the jobs per second that the CPU of every
 * process involved (this one, redis-server, the sandbox child) allows on this many cores, and the
 * ratio those ceilings allow. When the ceiling ratio is under the target, no tuning of our code
 * alone can meet it on this machine: Redis's and the sandbox's share is already over budget.
 */
function cpuCeiling(pipeline: PhaseResult, baseline: PhaseResult): string {
  const total = (r: PhaseResult) =>
    r.cpuMsPerJob.node + (r.cpuMsPerJob.redis ?? 0) + (r.cpuMsPerJob.sandbox ?? 0);
  const cores = availableParallelism();
  const ceiling = (r: PhaseResult) => (cores * 1000) / total(r);
  // With this process free, the rest still needs CPU, and redis-server is single-threaded.
  const redisMs = pipeline.cpuMsPerJob.redis ?? 0;
  const others = redisMs + (pipeline.cpuMsPerJob.sandbox ?? 0);
  const freeCeiling = Math.min(
    others > 0 ? (cores * 1000) / others : Infinity,
    redisMs > 0 ? 1000 / redisMs : Infinity,
  );
  return (
    `CPU per job in all processes: pipeline ${total(pipeline).toFixed(2)} ms, baseline ` +
    `${total(baseline).toFixed(2)} ms; CPU-bound ceilings on ${cores} cores ` +
    `${Math.round(ceiling(pipeline))} and ${Math.round(ceiling(baseline))} jobs/s ` +
    `(ratio ceiling ${(ceiling(pipeline) / ceiling(baseline)).toFixed(2)}; with this process's ` +
    `CPU at zero, ${(freeCeiling / ceiling(baseline)).toFixed(2)})`
  );
}

/** Runs the benchmark and prints its numbers. Options default from the command line. */
export async function main(overrides: Partial<ThroughputOptions> = {}): Promise<ThroughputResult> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      jobs: { type: 'string', default: '10000' },
      concurrency: { type: 'string', default: '32' },
      producers: { type: 'string', default: '32' },
      sandbox: { type: 'string', default: 'child' },
      'phase-timeout-ms': { type: 'string', default: '180000' },
    },
    // Under `npm run bench` the runner's own flags (`--only`) are on the command line too.
    strict: false,
  });
  const opts: ThroughputOptions = {
    jobs: Number(values.jobs),
    concurrency: Number(values.concurrency),
    producers: Number(values.producers),
    sandbox: values.sandbox === 'inproc' ? 'inproc' : 'child',
    phaseTimeoutMs: Number(values['phase-timeout-ms']),
    ...overrides,
  };

  const redis = await spawnRedisServer();
  const sandbox = await startSandboxFor(opts.sandbox);
  const info = new Redis(redis.url);
  try {
    const v = versions(await info.info('server'));
    console.log(
      `throughput: ${opts.jobs} charges per phase, worker concurrency ${opts.concurrency}, ` +
        `${opts.producers} producers; sandbox ${opts.sandbox === 'child' ? 'in a child process' : 'in-process'}, ` +
        `encryption on; throwaway redis-server ${redis.url}`,
    );
    console.log(
      `cores ${availableParallelism()} (${cpus()[0]?.model.trim() ?? 'unknown cpu'}), ` +
        `node ${v.node}, redis ${v.redis}, bullmq ${v.bullmq}`,
    );

    const probe: CpuProbe = { redisPid: redis.pid, sandboxPid: sandbox.pid, info };
    // Warm-up: JIT, connections, Lua script loading; not measured.
    await runBaseline(redis.url, probe, opts, 'warm', WARMUP_JOBS);
    await runPipeline(redis.url, sandbox.url, probe, opts, 'warm', WARMUP_JOBS);

    const baseline = await runBaseline(redis.url, probe, opts, 'run', opts.jobs);
    console.log(line('baseline', baseline));
    const pipeline = await runPipeline(redis.url, sandbox.url, probe, opts, 'run', opts.jobs);
    console.log(line('pipeline', pipeline));
    const ratio = pipeline.jobsPerSec / baseline.jobsPerSec;
    console.log(cpuCeiling(pipeline, baseline));
    console.log(
      `ratio pipeline/baseline ${ratio.toFixed(2)} (target >= 0.50: ${ratio >= 0.5 ? 'met' : 'NOT met'})`,
    );
    return { pipeline, baseline, ratio };
  } finally {
    await info.quit();
    await sandbox.stop();
    await redis.close();
  }
}

const direct =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (direct && process.argv.includes('--serve-sandbox')) {
  await serveSandbox();
} else if (direct) {
  await main();
}
