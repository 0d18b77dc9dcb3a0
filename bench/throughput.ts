/**
 * End-to-end charge throughput against two baselines measured in the same run, on the same
 * (throwaway) Redis, the same sandbox and the same worker concurrency (issue 18):
 *
 *   npm run bench -- --only throughput
 *   npx tsx bench/throughput.ts [--jobs 2000] [--rounds 3] [--concurrency 32] [--producers 32]
 *       [--phases noop,gateway-http,gateway-fetch,gateway-undici,today,pipeline]
 *       [--run dist|src] [--today <git ref>] [--phase-timeout-ms 180000]
 *
 * Phases (each a worker process of its own; this process is the producer/API side):
 * - `noop`: Queue.add → a BullMQ worker that does nothing (BullMQ's own cycle);
 * - `gateway-<adapter>`: Queue.add → a bare BullMQ worker whose only work is the encrypted charge
 *   call to the sandbox through the Sayswitch adapter over that HTTP adapter (`http`: axios's Node
 *   http adapter, `fetch`: axios's fetch adapter, `undici`: axios on an undici Pool) — the
 *   irreducible work of a payment;
 * - `pipeline`: createPayment here (validation, card token sealed, request HMAC, intent created by
 *   Lua, job enqueued) → the real `worker` role (claim with lease and rate-limit token, unseal,
 *   encrypted call, decrypt, transition to `succeeded` with its event);
 * - `today`: the same pipeline with the code of `--today` on both sides (the commit before issue
 *   18: axios's http adapter, the rate limiter's separate round trip, the old scripts), compiled
 *   the same way, against the same Redis and sandbox: its worker runs today's worker role and this
 *   process runs today's createPayment (issue 18 changed the API side too: the sealing nonce pool,
 *   the created intent built without zod).
 *
 * Both pipeline phases' producers run in this process from their code's dist/ (or src/ with
 * `--run src`). Before round 1 each makes 2000 payments with no worker (warmProducers), and one
 * phase runs uncounted to warm the sandbox and redis-server, so no JIT warm-up is charged to
 * whichever phase happens to run first (it showed as 2–3x the producer's and the sandbox's CPU
 * per payment of the same code in later rounds).
 *
 * Phases alternate within each round (their order rotates between rounds) and every figure is
 * printed as a range over the rounds: on a loaded machine absolute figures move by ±30 %, ratios
 * within a round much less. Latency is enqueue-to-final from the job's own timestamps (enqueued →
 * finished), queueing included since producers and workers run at once. CPU per payment is read
 * from /proc for every process: this one (producer), the worker, redis-server and the sandbox.
 * Redis figures per payment: commands Redis executed (INFO commandstats: those inside Lua scripts
 * included), and from the client side (bench/redis-io.ts) the top-level commands the producer and
 * the worker sent (a script call counts one) and their socket writes: round trips, since ioredis
 * writes a pipelined batch at once. `BENCH_CMDSTATS=1` also prints each phase's commands per payment
 * by command name, to see where they go.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { JOB_RETENTION } from '../src/infra/queues/dispatcher.ts';
import { startSandbox } from '../src/sandbox/index.ts';
import { spawnRedisServer } from '../test/support/redis-server.ts';
import { dieWithThisProcess } from '../test/support/watchdog.ts';
import { startCpuProfile } from './cpu-profile.ts';
import { countRedisIo, type RedisIo } from './redis-io.ts';
import type { WorkerSpec } from './throughput-worker.ts';

const SECRET_KEY = 'sk_test_bench_throughput';
const ENCRYPTION = {
  key: 'bench-throughput-key-0123456789a',
  iv: 'bench-thru-iv-16',
  encoding: 'hex',
} as const;
const WARMUP_JOBS = 500;
/** The commit before issue 18's hot-path work: what "today" measures by default. */
export const TODAY_REF = 'f568cd4';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const PHASES = [
  'noop',
  'gateway-http',
  'gateway-fetch',
  'gateway-undici',
  'today',
  'pipeline',
] as const;
type PhaseName = (typeof PHASES)[number];

export interface ThroughputOptions {
  jobs: number;
  rounds: number;
  concurrency: number;
  producers: number;
  phases: PhaseName[];
  run: 'dist' | 'src';
  today: string;
  phaseTimeoutMs: number;
}

export interface PhaseResult {
  jobsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU ms per payment: this process (producer/API), the worker, redis-server, the sandbox. */
  cpu: { producer: number; worker: number; redis: number; sandbox: number };
  /**
   * Per payment: commands Redis executed (those inside scripts included), top-level commands the
   * producer and worker sent (a script call counts one), and their socket writes (round trips).
   */
  redis: { commands: number; topLevel: number; roundTrips: number };
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

/** Commands Redis has executed so far (those run inside scripts included), and script calls. */
async function redisCommands(
  info: Redis,
): Promise<{ all: number; scripts: number; each: Map<string, number> }> {
  const text = await info.info('commandstats');
  let all = 0;
  let scripts = 0;
  const each = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    all += Number(m[2]);
    each.set(m[1] ?? '', Number(m[2]));
    if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(m[1] ?? ''))
      scripts += Number(m[2]);
  }
  return { all, scripts, each };
}

/** `BENCH_CMDSTATS=1`: prints a phase's commands per payment, by command (where they go). */
function printCommandBreakdown(
  phase: string,
  before: Map<string, number>,
  after: Map<string, number>,
  jobs: number,
): void {
  const rows = [...after]
    .map(([cmd, n]) => [cmd, (n - (before.get(cmd) ?? 0)) / jobs] as const)
    .filter(([, per]) => per >= 0.05)
    .sort((a, b) => b[1] - a[1]);
  console.log(
    `  ${phase} commands/payment: ${rows.map(([c, n]) => `${c} ${n.toFixed(2)}`).join(', ')}`,
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
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
  // Killed if this process dies without stopping it (killed, or SIGPIPE under `| head`).
  dieWithThisProcess(child);
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

/** Whether dist/ holds a build at least as new as every file under src/ (bin/billing.js's rule). */
function distIsFresh(root: string): boolean {
  const main = join(root, 'dist', 'main.js');
  if (!existsSync(main)) return false;
  const built = statSync(main).mtimeMs;
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      return Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }, 0);
  return newest(join(root, 'src')) <= built;
}

/** The worker's code: this checkout's dist/ (built when stale) or src/ through tsx. */
function currentCode(run: 'dist' | 'src'): { root: string; ext: '.js' | '.ts'; label: string } {
  if (run === 'src') return { root: join(ROOT, 'src'), ext: '.ts', label: 'src/ through tsx' };
  if (!distIsFresh(ROOT)) {
    console.log('building dist/ (npm run build): it is missing or older than src/');
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  }
  return {
    root: join(ROOT, 'dist'),
    ext: '.js',
    label: 'dist/ (compiled JS, not transpiled at run time; tsx loads only the bench harness)',
  };
}

/**
 * The code of `ref` (src/ and tsconfig.json from git), under bench/out/ so it resolves this
 * checkout's node_modules, compiled like the current code when `run` is dist. Cached per ref.
 */
function todayCode(ref: string, run: 'dist' | 'src'): { root: string; ext: '.js' | '.ts' } {
  const dir = join(ROOT, 'bench', 'out', `today-${ref}`);
  if (!existsSync(join(dir, 'src'))) {
    mkdirSync(dir, { recursive: true });
    // package.json too: later code reads its version (http/openapi.ts).
    const tar = execFileSync('git', ['archive', ref, 'src', 'tsconfig.json', 'package.json'], {
      cwd: ROOT,
      maxBuffer: 1 << 28,
    });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
  }
  if (run === 'src') return { root: join(dir, 'src'), ext: '.ts' };
  if (!existsSync(join(dir, 'dist', 'main.js'))) {
    console.log(`compiling ${ref} for the "today" phase (once; cached in bench/out/)`);
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], {
      cwd: dir,
      stdio: 'inherit',
    });
  }
  return { root: join(dir, 'dist'), ext: '.js' };
}

function appEnv(redisUrl: string, sandboxUrl: string, prefix: string, concurrency: number) {
  return {
    NODE_ENV: 'development',
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    SAYSWITCH_BASE_URL: sandboxUrl,
    SAYSWITCH_SECRET_KEY: SECRET_KEY,
    SAYSWITCH_ENCRYPTION_KEY: ENCRYPTION.key,
    SAYSWITCH_ENCRYPTION_IV: ENCRYPTION.iv,
    SAYSWITCH_TIMEOUT_MS: '30000',
    // The limiter stays in the path (a token per claim), high enough not to bind.
    SAYSWITCH_RATE_LIMIT_PER_SEC: '10000',
    WORKER_CONCURRENCY: String(concurrency),
    DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
    API_TOKEN: 'bench-api-token-0123456789',
    LOG_LEVEL: 'silent',
  };
}

/** A worker process, spoken to over IPC (bench/throughput-worker.ts). */
class WorkerChild {
  private constructor(private readonly child: ChildProcess) {}
  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(spec: WorkerSpec): Promise<WorkerChild> {
    const script = fileURLToPath(new URL('./throughput-worker.ts', import.meta.url));
    const child = fork(script, [JSON.stringify(spec)], {
      // BENCH_CPU_PROF=<dir>: each worker writes a CPU profile of its measured section there.
      execArgv: ['--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    dieWithThisProcess(child);
    const w = new WorkerChild(child);
    await w.next((m) => m.ready === true, 60_000);
    return w;
  }

  private next(
    accept: (m: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error('worker process did not answer in time'));
      }, timeoutMs);
      const onMessage = (m: Record<string, unknown>) => {
        if (!accept(m)) return;
        cleanup();
        resolve(m);
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`worker process exited with ${code}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
    });
  }

  /** Counts from now; resolves with the latencies (and Redis I/O) once `n` more jobs completed. */
  async mark(
    n: number,
    timeoutMs: number,
  ): Promise<() => Promise<{ latencies: number[]; io: RedisIo; calls?: Record<string, number> }>> {
    const reached = this.next((m) => m.reached === n, timeoutMs);
    // Rejections surface when awaited; keep an unawaited one from crashing the bench meanwhile.
    reached.catch(() => undefined);
    this.child.send({ mark: n });
    await this.next((m) => m.marked === n, 30_000);
    return async () => {
      const m = await reached;
      return { latencies: m.latencies as number[], io: m.io as RedisIo };
    };
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.send({ stop: true });
    await exited;
  }
}

interface Ctx {
  redisUrl: string;
  sandboxUrl: string;
  redisPid: number | undefined;
  sandboxPid: number | undefined;
  info: Redis;
  /** What this process (the producer) sends Redis. */
  io: RedisIo;
  opts: ThroughputOptions;
  current: { root: string; ext: '.js' | '.ts' };
  today: { root: string; ext: '.js' | '.ts' } | undefined;
}

/** Submissions the sandbox answered as duplicate references so far (its ledger's activity). */
async function sandboxDuplicates(sandboxUrl: string): Promise<number> {
  const res = await fetch(new URL('/__sandbox/ledger', sandboxUrl));
  if (!res.ok) throw new Error(`sandbox ledger: HTTP ${res.status}`);
  const ledger = (await res.json()) as { activity: Record<string, { duplicates: number }> };
  let n = 0;
  for (const a of Object.values(ledger.activity)) n += a.duplicates;
  return n;
}

/** The API side of a pipeline phase: an app of the phase's code, and its createPayment. */
interface ProducerApp {
  create(body: Record<string, string>): Promise<{ status: string }>;
  countSucceeded(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens the producer of `code` in this process: the same code as the phase's worker (this
 * checkout's, or `--today`'s), compiled the same way, so "node CPU per payment" of `today` is
 * today's API side and today's worker, not today's worker behind this checkout's API side.
 */
async function openProducer(
  code: { root: string; ext: '.js' | '.ts' },
  env: Record<string, string>,
): Promise<ProducerApp> {
  const load = async <T>(path: string): Promise<T> =>
    (await import(pathToFileURL(`${code.root}/${path}${code.ext}`).href)) as T;
  interface AppLike {
    store: { countByState(): Promise<Record<string, number>> };
    dispatcher: unknown;
    sealer: unknown;
    clock: unknown;
    config: { dataEncryptionKey: unknown };
    /** Since the DATA_ENCRYPTION_KEY rotation (the `today` commit has none: it takes hashKey). */
    hasher?: unknown;
    close(): Promise<void>;
  }
  const { openApp } = await load<{ openApp: (c: unknown, l: unknown) => AppLike }>(
    'app/composition',
  );
  const { loadConfig } = await load<{ loadConfig: (e: object) => unknown }>('config/config');
  const { createLogger } = await load<{ createLogger: (o: object) => unknown }>('infra/logger');
  const { createPayment } = await load<{
    createPayment: (deps: object, body: object) => Promise<{ status: string }>;
  }>('payments/create');
  const app = openApp(loadConfig(env), createLogger({ level: 'silent' }));
  const deps = {
    store: app.store,
    dispatcher: app.dispatcher,
    sealer: app.sealer,
    clock: app.clock,
    // Either code's createPayment finds its own: hashKey before the key rotation, hasher since.
    hashKey: app.config.dataEncryptionKey,
    hasher: app.hasher,
  };
  return {
    create: (body) => createPayment(deps, body),
    countSucceeded: async () => (await app.store.countByState()).succeeded ?? 0,
    close: () => app.close(),
  };
}

/**
 * The body of payment `i` of the phase using `prefix`: the same charge in every pipeline phase,
 * under a key of that phase's own. The sandbox is shared by all phases and keeps every reference
 * it saw: a key used by an earlier phase would be answered as a duplicate reference and cost a
 * second call (the verify that adopts it), which is not the path being measured.
 */
function chargeBody(prefix: string, i: number): Record<string, string> {
  return {
    type: 'charge',
    key: `${prefix}-p${i}`,
    email: 'bench@example.com',
    amount: '1500.00',
    currency: 'NGN',
    card_token: 'tok_bench_0123456789abcdef',
  };
}

/** Payments each producer code makes, with no worker, before round 1. */
const PRODUCER_WARMUP_JOBS = 2000;

/**
 * Runs each pipeline code's createPayment PRODUCER_WARMUP_JOBS times on a prefix of its own before
 * anything is measured, so the first pipeline phase of round 1 does not carry the producer's JIT
 * warm-up alone (it showed as producer CPU up to 3x the same code's in later rounds). The intents
 * stay queued in the bench's throwaway Redis; no phase reads that prefix.
 */
async function warmProducers(ctx: Ctx): Promise<void> {
  const codes = [
    ctx.opts.phases.includes('pipeline') ? ctx.current : undefined,
    ctx.opts.phases.includes('today') ? ctx.today : undefined,
  ];
  for (const [n, code] of codes.entries()) {
    if (!code) continue;
    const env = appEnv(ctx.redisUrl, ctx.sandboxUrl, `warmup-${n}`, ctx.opts.concurrency);
    const producer = await openProducer(code, env);
    try {
      await produce(PRODUCER_WARMUP_JOBS, ctx.opts.producers, async (i) => {
        const r = await producer.create(chargeBody(env.QUEUE_PREFIX, i));
        if (r.status !== 'created') throw new Error(`warm-up payment ${i}: ${r.status}`);
      });
    } finally {
      await producer.close();
    }
  }
}

/** One phase: a fresh worker process, a warm-up, then `jobs` payments measured. */
async function runPhase(ctx: Ctx, phase: PhaseName, round: number): Promise<PhaseResult> {
  const { opts } = ctx;
  const prefix = `r${round}-${phase}`;
  const env = appEnv(ctx.redisUrl, ctx.sandboxUrl, prefix, opts.concurrency);
  const pipeline = phase === 'pipeline' || phase === 'today';
  const code = phase === 'today' ? ctx.today : ctx.current;
  if (!code) throw new Error('no code for today');
  const worker = await WorkerChild.start({
    mode: pipeline ? 'pipeline' : phase === 'noop' ? 'noop' : 'gateway',
    root: code.root,
    ext: code.ext,
    redisUrl: ctx.redisUrl,
    sandboxUrl: ctx.sandboxUrl,
    prefix,
    concurrency: opts.concurrency,
    adapter: phase === 'gateway-http' ? 'http' : phase === 'gateway-fetch' ? 'fetch' : 'undici',
    env,
  });

  // The producer: createPayment of the phase's code for the pipelines, a plain Queue.add of the
  // same shape otherwise.
  const app = pipeline ? await openProducer(code, env) : undefined;
  const connection = pipeline ? undefined : new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const queue = connection
    ? new Queue('charges', {
        connection,
        prefix,
        // The dispatcher's retention, so every phase keeps the same history in Redis.
        defaultJobOptions: { removeOnComplete: JOB_RETENTION.removeOnComplete },
      })
    : undefined;
  let next = 0;
  const enqueue = async (n: number) => {
    const from = next;
    next += n;
    await produce(n, opts.producers, async (j) => {
      const i = from + j;
      if (app) {
        const r = await app.create(chargeBody(prefix, i));
        if (r.status !== 'created') throw new Error(`payment ${i}: ${r.status}`);
      } else {
        await queue?.add(
          'submit',
          { key: `api_p${i}`, attempt: 1, reference: `api_${prefix}_p${i}_1` },
          { jobId: `api_p${i}_1-q1`, attempts: 8, backoff: { type: 'catalog' } },
        );
      }
    });
  };
  const section = async (n: number) => {
    const done = await worker.mark(n, opts.phaseTimeoutMs);
    await enqueue(n);
    return done();
  };

  try {
    await section(WARMUP_JOBS);
    const cpu = (pid: number | undefined) => procCpuSeconds(pid) ?? 0;
    const self = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    };
    /** Every process's CPU, Redis's command counts and our Redis I/O, now. */
    const snapshot = async () => ({
      producer: self(),
      worker: cpu(worker.pid),
      redis: cpu(ctx.redisPid),
      sandbox: cpu(ctx.sandboxPid),
      commands: await redisCommands(ctx.info),
      io: { ...ctx.io },
    });
    const profile = await startCpuProfile(`${prefix}-producer`);
    const before = await snapshot();
    const started = performance.now();
    const { latencies, io } = await section(opts.jobs);
    const seconds = (performance.now() - started) / 1000;
    const after = await snapshot();
    await profile();
    if (process.env.BENCH_CMDSTATS)
      printCommandBreakdown(phase, before.commands.each, after.commands.each, opts.jobs);
    // The path measured is one charge call per payment: a duplicate answer (a reference the
    // shared sandbox saw in an earlier phase) costs a second call, the verify that adopts it.
    const duplicates = await sandboxDuplicates(ctx.sandboxUrl);
    if (duplicates > 0)
      throw new Error(
        `${phase}: the sandbox answered ${duplicates} submissions as duplicate references; ` +
          'the bench measures first submissions only',
      );
    if (app) {
      const succeeded = await app.countSucceeded();
      if (succeeded !== WARMUP_JOBS + opts.jobs)
        throw new Error(`${phase}: ${succeeded}/${WARMUP_JOBS + opts.jobs} intents succeeded`);
    }
    const per = (a: number, b: number) => ((b - a) * 1000) / opts.jobs;
    const sorted = latencies.sort((a, b) => a - b);
    // The INFO call of the snapshot itself is not the phase's; nor is its command and write here.
    return {
      jobsPerSec: opts.jobs / seconds,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      cpu: {
        producer: per(before.producer, after.producer),
        worker: per(before.worker, after.worker),
        redis: per(before.redis, after.redis),
        sandbox: per(before.sandbox, after.sandbox),
      },
      redis: {
        commands: (after.commands.all - before.commands.all - 1) / opts.jobs,
        topLevel: (after.io.commands - before.io.commands - 1 + io.commands) / opts.jobs,
        roundTrips: (after.io.writes - before.io.writes - 1 + io.writes) / opts.jobs,
      },
    };
  } finally {
    await worker.stop();
    await queue?.close();
    await connection?.quit();
    await app?.close();
  }
}

const nodeCpu = (r: PhaseResult) => r.cpu.producer + r.cpu.worker;

/** "min–max" of a figure over the rounds. */
function range(values: number[], digits = 0): string {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const f = (v: number) => v.toFixed(digits);
  return f(lo) === f(hi) ? f(lo) : `${f(lo)}–${f(hi)}`;
}

function phaseLine(name: string, r: PhaseResult): string {
  return (
    `  ${name.padEnd(15)} ${Math.round(r.jobsPerSec).toString().padStart(5)} payments/s, ` +
    `p50 ${r.p50Ms.toFixed(0)} ms, p99 ${r.p99Ms.toFixed(0)} ms; CPU ms/payment producer ` +
    `${r.cpu.producer.toFixed(2)}, worker ${r.cpu.worker.toFixed(2)}, redis ${r.cpu.redis.toFixed(2)}, ` +
    `sandbox ${r.cpu.sandbox.toFixed(2)}; redis/payment ${r.redis.commands.toFixed(1)} commands, ` +
    `${r.redis.topLevel.toFixed(1)} top-level, ${r.redis.roundTrips.toFixed(1)} round trips`
  );
}

/** The summary: one markdown row per phase (ranges over the rounds), then ratios and targets. */
function summary(results: Map<PhaseName, PhaseResult[]>, rounds: Map<PhaseName, PhaseResult>[]) {
  const rows = [
    '| phase | payments/s | p50 ms | p99 ms | CPU ms/payment: producer | worker | redis | sandbox | Redis commands/payment | top-level | round trips |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const [name, rs] of results) {
    const m = (f: (r: PhaseResult) => number, d = 0) => range(rs.map(f), d);
    rows.push(
      `| ${name} | ${m((r) => r.jobsPerSec)} | ${m((r) => r.p50Ms)} | ${m((r) => r.p99Ms)} | ` +
        `${m((r) => r.cpu.producer, 2)} | ${m((r) => r.cpu.worker, 2)} | ${m((r) => r.cpu.redis, 2)} | ` +
        `${m((r) => r.cpu.sandbox, 2)} | ${m((r) => r.redis.commands, 1)} | ` +
        `${m((r) => r.redis.topLevel, 1)} | ${m((r) => r.redis.roundTrips, 1)} |`,
    );
  }
  console.log(`\n${rows.join('\n')}\n`);

  /** A ratio computed within each round, printed as a range over the rounds. */
  const ratio = (label: string, a: PhaseName, b: PhaseName, f: (r: PhaseResult) => number) => {
    const values = rounds.flatMap((r) => {
      const x = r.get(a);
      const y = r.get(b);
      return x && y ? [f(x) / f(y)] : [];
    });
    if (values.length > 0) console.log(`  ${label.padEnd(52)} ${range(values, 2)}`);
    return values;
  };
  const tput = (r: PhaseResult) => r.jobsPerSec;
  console.log('ratios (within each round; range over the rounds):');
  ratio('pipeline / noop (payments/s)', 'pipeline', 'noop', tput);
  const vsGateway = ratio(
    'pipeline / gateway-undici (payments/s)',
    'pipeline',
    'gateway-undici',
    tput,
  );
  // What the throughput ratio becomes where every process has a core of its own (it is then bound
  // by the worker alone); on two shared cores throughput follows the CPU of all four processes.
  ratio(
    'worker CPU per payment, gateway-undici / pipeline',
    'gateway-undici',
    'pipeline',
    (r) => r.cpu.worker,
  );
  ratio('today / noop (payments/s)', 'today', 'noop', tput);
  ratio('today / gateway-http (payments/s)', 'today', 'gateway-http', tput);
  ratio('pipeline / today (payments/s)', 'pipeline', 'today', tput);
  ratio('gateway-http / noop (payments/s)', 'gateway-http', 'noop', tput);
  ratio('gateway-fetch / noop (payments/s)', 'gateway-fetch', 'noop', tput);
  ratio('gateway-undici / noop (payments/s)', 'gateway-undici', 'noop', tput);
  const cpuVsToday = ratio('node CPU per payment, pipeline / today', 'pipeline', 'today', nodeCpu);
  /** A figure of the pipeline, gateway-undici and today phases of each round, as a range. */
  const threePhases = (
    label: string,
    f: (p: PhaseResult, g: PhaseResult, t: PhaseResult) => number,
  ) => {
    const values = rounds.flatMap((r) => {
      const p = r.get('pipeline');
      const g = r.get('gateway-undici');
      const t = r.get('today');
      return p && g && t ? [f(p, g, t)] : [];
    });
    if (values.length > 0) console.log(`  ${label.padEnd(52)} ${range(values, 2)}`);
  };
  // The floor of that ratio: a pipeline whose worker cost no more than the bare gateway call
  // (gateway-undici's worker) behind this checkout's createPayment.
  threePhases(
    'its floor (pipeline producer + gateway worker)',
    (p, g, t) => (p.cpu.producer + g.cpu.worker) / nodeCpu(t),
  );
  // What sharing BullMQ jobs between payments could buy at most: the pipeline without BullMQ's
  // whole cost per job (the noop phase's producer and worker), against today.
  const withoutQueue = rounds.flatMap((r) => {
    const [p, n, t] = [r.get('pipeline'), r.get('noop'), r.get('today')];
    return p && n && t ? [(nodeCpu(p) - nodeCpu(n)) / nodeCpu(t)] : [];
  });
  if (withoutQueue.length > 0) {
    console.log(
      `  ${"without BullMQ's cost per job (pipeline - noop)".padEnd(52)} ${range(withoutQueue, 2)}`,
    );
  }
  // The same target in milliseconds: what the pipeline adds to a bare Queue.add and gateway call
  // (validation, sealing, the request HMAC, the intent's scripts, its event), and what half of
  // today's node CPU leaves for it once the bare call is paid.
  threePhases('node CPU ms/payment above gateway-undici', (p, g) => nodeCpu(p) - nodeCpu(g));
  threePhases(
    '  the target leaves for it (0.5 x today - gateway)',
    (_p, g, t) => 0.5 * nodeCpu(t) - nodeCpu(g),
  );
  const commands = (results.get('pipeline') ?? []).map((r) => r.redis.commands);

  const verdict = (ok: boolean | undefined) =>
    ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met';
  const all = (v: number[], test: (x: number) => boolean) =>
    v.length === 0 ? undefined : v.every(test);
  console.log('targets (every round):');
  console.log(
    `  node CPU per payment <= 0.5 x today: ${verdict(all(cpuVsToday, (x) => x <= 0.5))}; ` +
      `pipeline >= 0.7 x gateway-undici: ${verdict(all(vsGateway, (x) => x >= 0.7))}; ` +
      `Redis commands per payment <= 60: ${verdict(all(commands, (x) => x <= 60))}`,
  );
}

/** Runs the benchmark and prints its numbers. Options default from the command line. */
export async function main(overrides: Partial<ThroughputOptions> = {}) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      jobs: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '32' },
      producers: { type: 'string', default: '32' },
      phases: { type: 'string', default: PHASES.join(',') },
      run: { type: 'string', default: 'dist' },
      today: { type: 'string', default: TODAY_REF },
      'phase-timeout-ms': { type: 'string', default: '180000' },
    },
    // Under `npm run bench` the runner's own flags (`--only`) are on the command line too.
    strict: false,
  });
  const phases = String(values.phases)
    .split(',')
    .map((p) => p.trim());
  const unknown = phases.filter((p) => !(PHASES as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`unknown phase ${unknown.join(', ')}`);
  const opts: ThroughputOptions = {
    jobs: Number(values.jobs),
    rounds: Number(values.rounds),
    concurrency: Number(values.concurrency),
    producers: Number(values.producers),
    phases: phases as PhaseName[],
    run: values.run === 'src' ? 'src' : 'dist',
    today: String(values.today),
    phaseTimeoutMs: Number(values['phase-timeout-ms']),
    ...overrides,
  };

  const current = currentCode(opts.run);
  let today: Ctx['today'];
  if (opts.phases.includes('today')) {
    try {
      today = todayCode(opts.today, opts.run);
    } catch (err) {
      console.log(`today phase skipped: ${opts.today} is not available here (${String(err)})`);
      opts.phases = opts.phases.filter((p) => p !== 'today');
    }
  }
  const redis = await spawnRedisServer();
  const sandbox = await startSandboxFor('child');
  const io = countRedisIo(Number(new URL(redis.url).port));
  const info = new Redis(redis.url);
  try {
    const v = versions(await info.info('server'));
    console.log(
      `throughput: ${opts.jobs} charges per phase (after ${WARMUP_JOBS} warm-up), ${opts.rounds} ` +
        `rounds, worker concurrency ${opts.concurrency}, ${opts.producers} producers; encryption ` +
        `on; sandbox, worker and redis-server in processes of their own`,
    );
    console.log(
      `worker code: ${current.label}; today = ${opts.today} ` +
        `(${opts.run === 'dist' ? 'compiled the same way' : 'through tsx'})`,
    );
    console.log(
      `cores ${availableParallelism()} (${cpus()[0]?.model.trim() ?? 'unknown cpu'}), ` +
        `node ${v.node}, redis ${v.redis}, bullmq ${v.bullmq}`,
    );
    const ctx: Ctx = {
      redisUrl: redis.url,
      sandboxUrl: sandbox.url,
      redisPid: redis.pid,
      sandboxPid: sandbox.pid,
      info,
      io,
      opts,
      current,
      today,
    };
    await warmProducers(ctx);
    // The sandbox and redis-server start cold too: one gateway phase, not counted, warms them, so
    // the first phase of round 1 is not the only one measured against a cold gateway.
    const warm = opts.phases.find((p) => p !== 'noop');
    if (warm) {
      const r = await runPhase(ctx, warm, -1);
      console.log(`warm-up (not counted)\n${phaseLine(warm, r)}`);
    }
    const results = new Map<PhaseName, PhaseResult[]>(opts.phases.map((p) => [p, []]));
    const rounds: Map<PhaseName, PhaseResult>[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      console.log(`round ${round + 1}/${opts.rounds}`);
      const order = opts.phases.map((_, i) => opts.phases[(i + round) % opts.phases.length]);
      const byPhase = new Map<PhaseName, PhaseResult>();
      for (const phase of order) {
        if (phase === undefined) continue;
        const r = await runPhase(ctx, phase, round);
        console.log(phaseLine(phase, r));
        byPhase.set(phase, r);
        results.get(phase)?.push(r);
      }
      rounds.push(byPhase);
    }
    summary(results, rounds);
    return { results, rounds };
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
