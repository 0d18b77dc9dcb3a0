/**
 * Batch ingest throughput (issue 7): generated payout rows through the whole submit pipeline —
 * streaming validation, content hashing, spilling, intent creation and `addBulk` enqueueing —
 * against a baseline measured in the same run: raw BullMQ `addBulk` of equivalent jobs (same
 * queue, names, payloads, ids and options, same chunk size). Prints rows per second for both,
 * their ratio (target >= 0.5) and the pipeline's peak RSS (target <= 256 MB).
 *
 *   npx tsx bench/batch-ingest.ts [--rows 1000000] [--chunk 1000] [--heap-mb 128]
 *
 * The pipeline runs in a child process of its own, so its peak RSS (the kernel's maxrss) is the
 * pipeline's alone. The child's V8 old space is capped at `--heap-mb` (0: V8's default), as a
 * memory-limited deployment would set it (NODE_OPTIONS=--max-old-space-size): with V8's default
 * sizing on a large host the heap grows to several times its live size before collecting, so RSS
 * then measures V8's laziness rather than what the pipeline keeps. Both numbers are worth reading.
 *
 * Runs on its own throwaway redis-server (never the shared one), flushed between the two runs so
 * neither pays for the other's keys. The CSV is generated as a stream, never held in memory.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { submitBatch, type BatchDeps } from '../src/batches/ingest.ts';
import { RedisBatchStore } from '../src/batches/store/batch-store.ts';
import { systemClock } from '../src/kernel/clock.ts';
import { attemptReference, batchIntentKey } from '../src/kernel/ids.ts';
import { createLogger } from '../src/infra/logger.ts';
import { bullJobName, jobOptionsFor } from '../src/infra/queues/catalog.ts';
import { createRedis } from '../src/infra/redis/connection.ts';
import { JOB_RETENTION, createDispatcher } from '../src/infra/queues/dispatcher.ts';
import { QUEUES, submitJobId } from '../src/infra/queues/names.ts';
import { RedisIntentStore } from '../src/payments/store/intent-store.ts';
import { createSealer } from '../src/infra/sealing.ts';
import { spawnRedisServer } from '../test/support/redis-server.ts';

const HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,meta_employee_id\n';
/** About 64 KiB of CSV per chunk: what a file stream or an HTTP body delivers at a time. */
const ROWS_PER_CHUNK = 700;
const PREFIX = 'bench';
const BATCH_ID = 'bench';

/** Row i's amount in minor units: varied, never zero. */
const amountMinor = (i: number) => 100_000 + (i % 9_973) * 101;

function formatAmount(minor: number): string {
  const frac = minor % 100;
  return frac === 0
    ? String(minor / 100)
    : `${Math.floor(minor / 100)}.${String(frac).padStart(2, '0')}`;
}

/** The payout file, generated a chunk at a time as the validator pulls it. */
function* payoutFile(rows: number): Generator<Buffer> {
  yield Buffer.from(HEADER);
  for (let start = 1; start <= rows; start += ROWS_PER_CHUNK) {
    let text = '';
    const end = Math.min(rows, start + ROWS_PER_CHUNK - 1);
    for (let i = start; i <= end; i++) {
      const account = String(1_000_000_000 + (i % 999_999_999)).padStart(10, '0');
      text += `p-${i},${account},058,GTBank,Employee ${i},${formatAmount(amountMinor(i))},NGN,Salary March,E${i}\n`;
    }
    yield Buffer.from(text);
  }
}

/** What the pipeline child reports. */
interface PipelineRun {
  ms: number;
  validateMs: number;
  enqueueMs: number;
  maxRssMb: number;
  /** RSS before the first row: the runtime, the tsx loader and the modules. */
  startRssMb: number;
  jobs: number;
}

/** Child mode: the pipeline alone, its report as one JSON line on stdout. */
async function runPipeline(redisUrl: string, rows: number, chunk: number): Promise<void> {
  const startRssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
  const redis = createRedis(redisUrl);
  const phases: Record<string, number> = {};
  const logger = createLogger({
    level: 'info',
    // Phase timings come from the pipeline's own log lines.
    destination: {
      write(line: string) {
        const entry = JSON.parse(line) as { msg?: string; ms?: number };
        if (entry.msg !== undefined && entry.ms !== undefined) phases[entry.msg] = entry.ms;
      },
    },
  });
  const dispatcher = createDispatcher(redis, PREFIX);
  const deps: BatchDeps = {
    batches: new RedisBatchStore(redis, PREFIX),
    store: new RedisIntentStore(redis, PREFIX),
    dispatcher,
    sealer: createSealer(randomBytes(32)),
    clock: systemClock,
    logger,
  };
  try {
    const t0 = performance.now();
    const result = await submitBatch(
      deps,
      { input: payoutFile(rows), type: 'payout', id: BATCH_ID, sourceName: 'generated.csv' },
      { chunkSize: chunk },
    );
    const ms = performance.now() - t0;
    if (result.status !== 'created' || result.totals.valid !== rows) {
      throw new Error(`pipeline did not enqueue every row: ${JSON.stringify(result.totals)}`);
    }
    const counts = await dispatcher.queue(QUEUES.payouts).getJobCounts('wait');
    const run: PipelineRun = {
      ms,
      validateMs: phases['batch file validated'] ?? Number.NaN,
      enqueueMs: phases['batch rows enqueued'] ?? Number.NaN,
      maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      startRssMb,
      jobs: counts.wait ?? 0,
    };
    process.stdout.write(`${JSON.stringify(run)}\n`);
  } finally {
    await dispatcher.close();
    await redis.quit().catch(() => redis.disconnect());
  }
}

function spawnPipeline(
  redisUrl: string,
  rows: number,
  chunk: number,
  heapMb: number,
): Promise<PipelineRun> {
  const child = spawn(
    process.execPath,
    [
      ...(heapMb > 0 ? [`--max-old-space-size=${heapMb}`] : []),
      '--import',
      import.meta.resolve('tsx'),
      fileURLToPath(import.meta.url),
      '--child-pipeline',
      redisUrl,
      '--rows',
      String(rows),
      '--chunk',
      String(chunk),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => (out += s));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || line === '') reject(new Error(`pipeline child exited with ${code}`));
      else resolve(JSON.parse(line) as PipelineRun);
    });
  });
}

/** Raw BullMQ `addBulk` of the jobs the pipeline enqueues. Returns milliseconds. */
async function runBaseline(redisUrl: string, rows: number, chunk: number): Promise<number> {
  const redis = createRedis(redisUrl);
  // The same default options as the dispatcher's queues.
  const queue = new Queue(QUEUES.payouts, {
    connection: redis,
    prefix: 'base',
    defaultJobOptions: JOB_RETENTION,
  });
  try {
    const name = bullJobName('payouts.submit');
    const options = jobOptionsFor('payouts.submit');
    const t0 = performance.now();
    for (let start = 1; start <= rows; start += chunk) {
      const jobs = [];
      for (let i = start; i < start + chunk && i <= rows; i++) {
        const key = batchIntentKey(BATCH_ID, `p-${i}`);
        jobs.push({
          name,
          data: { key, attempt: 1, amount: amountMinor(i), currency: 'NGN' },
          opts: { ...options, jobId: submitJobId(attemptReference(key, 1), 1) },
        });
      }
      await queue.addBulk(jobs);
    }
    return performance.now() - t0;
  } finally {
    await queue.close();
    await redis.quit().catch(() => redis.disconnect());
  }
}

export interface BatchIngestBenchResult {
  rows: number;
  pipelineRowsPerSec: number;
  baselineRowsPerSec: number;
  ratio: number;
  peakRssMb: number;
  startRssMb: number;
  heapMb: number;
  validateMs: number;
  enqueueMs: number;
  /** Redis memory after the pipeline (intent, history, indexes, job), per row. */
  redisBytesPerRow: number;
}

/** Runs the benchmark, prints the report and returns the numbers. */
export async function main(
  argv: string[] = process.argv.slice(2),
): Promise<BatchIngestBenchResult | undefined> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string', default: '1000000' },
      chunk: { type: 'string', default: '1000' },
      'heap-mb': { type: 'string', default: '128' },
      'child-pipeline': { type: 'string' },
    },
  });
  const rows = Number(values.rows);
  const chunk = Number(values.chunk);
  const heapMb = Number(values['heap-mb']);
  if (values['child-pipeline'] !== undefined) {
    await runPipeline(values['child-pipeline'], rows, chunk);
    return undefined;
  }

  const server = await spawnRedisServer();
  const admin = createRedis(server.url);
  try {
    process.stdout.write(
      `batch ingest: ${rows.toLocaleString('en')} payout rows, chunks of ${chunk}, ` +
        `pipeline heap ${heapMb > 0 ? `capped at ${heapMb} MB` : 'V8 default'}\n`,
    );
    const pipeline = await spawnPipeline(server.url, rows, chunk, heapMb);
    if (pipeline.jobs !== rows) throw new Error(`expected ${rows} jobs, found ${pipeline.jobs}`);
    const memory = /used_memory:(\d+)/.exec(await admin.info('memory'))?.[1];
    const redisBytesPerRow = memory === undefined ? Number.NaN : Number(memory) / rows;
    await admin.flushall();
    const baselineMs = await runBaseline(server.url, rows, chunk);

    const out: BatchIngestBenchResult = {
      rows,
      pipelineRowsPerSec: Math.round(rows / (pipeline.ms / 1000)),
      baselineRowsPerSec: Math.round(rows / (baselineMs / 1000)),
      ratio: baselineMs / pipeline.ms,
      peakRssMb: pipeline.maxRssMb,
      startRssMb: pipeline.startRssMb,
      heapMb,
      validateMs: pipeline.validateMs,
      enqueueMs: pipeline.enqueueMs,
      redisBytesPerRow,
    };
    const line = (label: string, value: string) => `  ${label.padEnd(46)}${value}\n`;
    process.stdout.write(
      line(
        'pipeline (validate, spill, intents, addBulk)',
        `${out.pipelineRowsPerSec.toLocaleString('en')} rows/s (${(pipeline.ms / 1000).toFixed(1)} s)`,
      ) +
        line('  validate + hash + spill', `${(out.validateMs / 1000).toFixed(1)} s`) +
        line('  intents + addBulk', `${(out.enqueueMs / 1000).toFixed(1)} s`) +
        line(
          'baseline (raw BullMQ addBulk)',
          `${out.baselineRowsPerSec.toLocaleString('en')} rows/s (${(baselineMs / 1000).toFixed(1)} s)`,
        ) +
        line('ratio pipeline/baseline', `${out.ratio.toFixed(2)} (target >= 0.5)`) +
        line('pipeline peak RSS', `${out.peakRssMb} MB (target <= 256 MB)`) +
        line('  of which before the first row', `${out.startRssMb} MB (node, tsx, modules)`) +
        line('Redis memory per row (intent + job)', `${Math.round(out.redisBytesPerRow)} bytes`),
    );
    return out;
  } finally {
    await admin.quit().catch(() => admin.disconnect());
    await server.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main();
}
