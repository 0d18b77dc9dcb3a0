/**
 * The worker side of bench/throughput.ts, in a process of its own so its CPU is measured apart
 * from the producer's. Started by the bench with one JSON argument ({@link WorkerSpec}); talks to
 * it over IPC:
 *   → { ready: true }                       once the worker listens
 *   ← { mark: n }                            count completions from here; answer after n
 *   → { marked: n }                          (sent before the bench enqueues those jobs)
 *   → { reached: n, latencies, io }          enqueue-to-final of those n jobs (job timestamps), and
 *                                            what this process sent Redis meanwhile (redis-io.ts)
 *   ← { stop: true }                         close and exit
 *
 * Modes: `noop` (a BullMQ worker that does nothing), `gateway` (a bare BullMQ worker whose only
 * work is the encrypted charge call to the sandbox through the Sayswitch adapter, with the given
 * HTTP adapter: the irreducible work of a payment), `pipeline` (the real `worker` role from
 * composition). `root` is the code the worker runs: `src` (through tsx) or a compiled `dist`, of
 * this checkout or of an older commit (the bench's "today" phase).
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { startCpuProfile } from './cpu-profile.ts';
import { countRedisIo } from './redis-io.ts';

export interface WorkerSpec {
  mode: 'noop' | 'gateway' | 'pipeline';
  /** Directory of the app's code (src/ or a dist/), and the extension of its modules. */
  root: string;
  ext: '.ts' | '.js';
  redisUrl: string;
  sandboxUrl: string;
  prefix: string;
  concurrency: number;
  /** The gateway mode's HTTP adapter (SayswitchTransport `httpAdapter`). */
  adapter: 'undici' | 'http' | 'fetch';
  env: Record<string, string>;
}

interface Closable {
  close(): Promise<unknown>;
}

type Completed = (cb: (timestamp: number, finishedOn: number | undefined) => void) => void;

const spec = JSON.parse(process.argv[2] ?? '{}') as WorkerSpec;
const io = countRedisIo(Number(new URL(spec.redisUrl).port));
const load = async <T>(path: string): Promise<T> =>
  (await import(`${spec.root}/${path}${spec.ext}`)) as T;

async function start(): Promise<{ onCompleted: Completed; close: () => Promise<void> }> {
  if (spec.mode === 'pipeline') {
    const { loadConfig } = await load<{ loadConfig: (e: Record<string, string>) => unknown }>(
      'config/config',
    );
    const { openApp, startRoles } = await load<{
      openApp: (c: unknown, l: unknown) => Closable;
      startRoles: (
        a: unknown,
        r: string[],
      ) => Promise<{ workers: Worker[]; stop(ms: number): Promise<void> }>;
    }>('app/composition');
    const { createLogger } = await load<{ createLogger: (o: object) => unknown }>('infra/logger');
    const app = openApp(loadConfig(spec.env), createLogger({ level: 'silent' }));
    const running = await startRoles(app, ['worker']);
    const charges = running.workers.find((w) => w.name === 'charges');
    if (!charges) throw new Error('no charges worker');
    return {
      onCompleted: (cb) => charges.on('completed', (job) => cb(job.timestamp, job.finishedOn)),
      close: async () => {
        await running.stop(10_000);
        await app.close();
      },
    };
  }
  const connection = new Redis(spec.redisUrl, { maxRetriesPerRequest: null });
  let processor: (job: { data: { reference: string } }) => Promise<unknown> = () =>
    Promise.resolve();
  let gateway: { close(): void } | undefined;
  if (spec.mode === 'gateway') {
    const { SayswitchGateway } = await load<{
      SayswitchGateway: new (o: object) => {
        close(): void;
        chargeCard(r: object): Promise<{ status: string }>;
      };
    }>('infra/gateway/sayswitch/client');
    const g = new SayswitchGateway({
      baseUrl: spec.sandboxUrl,
      secretKey: spec.env.SAYSWITCH_SECRET_KEY,
      timeoutMs: 30_000,
      encryption: {
        key: spec.env.SAYSWITCH_ENCRYPTION_KEY,
        iv: spec.env.SAYSWITCH_ENCRYPTION_IV,
        encoding: 'hex',
      },
      httpAdapter: spec.adapter,
    });
    gateway = g;
    processor = async (job) => {
      const outcome = await g.chargeCard({
        reference: job.data.reference,
        amount: 150_000,
        currency: 'NGN',
        email: 'bench@example.com',
        cardToken: 'tok_bench_0123456789abcdef',
      });
      if (outcome.status !== 'succeeded') throw new Error(`charge ${outcome.status}`);
      return outcome;
    };
  }
  const worker = new Worker('charges', processor, {
    connection,
    prefix: spec.prefix,
    concurrency: spec.concurrency,
    // The jobs carry the catalog's backoff type; a failure here is a bench bug, shown below.
    settings: { backoffStrategy: () => 1_000 },
  });
  worker.on('failed', (_job, err) => console.error(`bench worker: job failed: ${err.message}`));
  await worker.waitUntilReady();
  return {
    onCompleted: (cb) => worker.on('completed', (job) => cb(job.timestamp, job.finishedOn)),
    close: async () => {
      await worker.close();
      gateway?.close();
      await connection.quit();
    },
  };
}

const running = await start();

/** BENCH_CPU_PROF: the worker's profile covers the measured section (from the second mark). */
let marks = 0;
let stopProfile: (() => Promise<void>) | undefined;
async function profileMark(): Promise<void> {
  marks++;
  if (marks === 2) stopProfile = await startCpuProfile(spec.prefix);
}

let target = Infinity;
let latencies: number[] = [];
running.onCompleted((timestamp, finishedOn) => {
  latencies.push((finishedOn ?? Date.now()) - timestamp);
  if (latencies.length === target) {
    process.send?.({ reached: target, latencies, io });
    target = Infinity;
  }
});
process.on('message', (msg: { mark?: number; stop?: boolean }) => {
  if (msg.mark !== undefined) {
    latencies = [];
    io.commands = 0;
    io.writes = 0;
    target = msg.mark;
    void profileMark().then(() => process.send?.({ marked: msg.mark }));
  } else if (msg.stop) {
    void (stopProfile?.() ?? Promise.resolve())
      .then(() => running.close())
      .then(() => process.exit(0));
  }
});
process.send?.({ ready: true });
