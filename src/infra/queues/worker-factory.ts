/** Builds BullMQ workers for catalog queues, with the one processor wrapper and the catalog backoff. */
import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from '../logger.ts';
import type { JobsOf } from './catalog.ts';
import type { QueueName } from './names.ts';
import {
  catalogBackoffStrategy,
  createProcessor,
  type HandlersFor,
  type ProcessorDeps,
} from './processor.ts';

export interface WorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency: number;
  /** Lock duration; a job whose worker stops renewing it is re-delivered (stalled). */
  lockDurationMs?: number;
  /** Replaces the catalog backoff (e.g. a schedule from configuration). */
  backoffMs?: (attemptsMade: number) => number;
  /**
   * The worker's `error` events (its connections' errors included): the composition root sends
   * them to the Redis health monitor, which logs an outage once instead of once per retry.
   */
  onError?: (err: Error) => void;
}

/** What a worker's processor is doing, as the watchdog (worker-watchdog.ts) reads it. */
export interface WorkerActivity {
  /** The jobs its processor is running now: job id → when it started (epoch ms). */
  running: Map<string, number>;
  /** When its processor last started a job (epoch ms; 0 before the first). */
  lastStartAt: number;
}

const activities = new WeakMap<Worker, WorkerActivity>();
const rebuilders = new WeakMap<Worker, () => Worker>();

/** The activity of a worker built by `startWorker` (undefined for any other). */
export function workerActivity(worker: Worker): WorkerActivity | undefined {
  return activities.get(worker);
}

/**
 * A new worker like `old` (same queue, handlers, prefix and options), for the watchdog to replace
 * a worker that stopped taking work. `old` must come from `startWorker`.
 */
export function rebuildWorker(old: Worker): Worker {
  const rebuild = rebuilders.get(old);
  if (!rebuild) throw new Error(`worker for ${old.name} was not built by startWorker`);
  return rebuild();
}

/**
 * Starts a worker for `queueName` running the catalog handlers of exactly that queue's jobs: a
 * missing handler, or a handler for a job of another queue, is a compile error (the second through
 * the `never` mapping of keys that are not the queue's jobs, even when `handlers` is not a literal).
 */
export function startWorker<Q extends QueueName, H extends HandlersFor<Q>>(
  queueName: Q,
  handlers: H & { [K in Exclude<keyof H, JobsOf<Q>>]: never },
  deps: ProcessorDeps,
  opts: WorkerOptions,
): Worker {
  const ref: { worker?: Worker } = {};
  const processor = createProcessor(queueName, handlers, deps, () => {
    if (!ref.worker) throw new Error('worker not started');
    return ref.worker;
  });
  const activity: WorkerActivity = { running: new Map(), lastStartAt: 0 };
  // Two parameters, not three: BullMQ builds an AbortController per job for a processor that
  // takes its `signal` (worker.js: processorAcceptsSignal), and no handler uses one.
  const tracked = (job: Job, token?: string) => {
    const id = job.id ?? '';
    activity.lastStartAt = Date.now();
    activity.running.set(id, activity.lastStartAt);
    const done = () => activity.running.delete(id);
    const running = processor(job, token);
    running.then(done, done);
    return running;
  };
  const worker = new Worker(queueName, tracked, {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency,
    lockDuration: opts.lockDurationMs ?? 30_000,
    // A dead worker's jobs come back after one lock period, not BullMQ's fixed 30 s.
    stalledInterval: opts.lockDurationMs ?? 30_000,
    // Handlers are idempotent (claims, leases, deterministic references), so a job whose worker
    // died repeatedly is safe to run again; failing it would strand its intent.
    maxStalledCount: 20,
    settings: {
      backoffStrategy: opts.backoffMs
        ? (attemptsMade: number) => opts.backoffMs?.(attemptsMade) ?? 0
        : catalogBackoffStrategy,
    },
  });
  ref.worker = worker;
  activities.set(worker, activity);
  rebuilders.set(worker, () => startWorker(queueName, handlers, deps, opts));
  const log: Logger = deps.logger.child({ queue: queueName });
  worker.on('failed', (job, err) => {
    log.warn(
      {
        jobId: job?.id,
        attemptsMade: job?.attemptsMade,
        err: { name: err.name, message: err.message },
      },
      'job failed',
    );
  });
  worker.on(
    'error',
    opts.onError ??
      ((err) => log.error({ err: { name: err.name, message: err.message } }, 'worker error')),
  );
  return worker;
}
