/**
 * Adds catalog jobs with deterministic ids, so a replay, a duplicate request or a second
 * scheduler collapses into the job that already exists. {@link submitJob} is the one place that
 * builds a submit job; everything that enqueues submissions (the API, a batch, a renewal, the
 * sweep) goes through {@link Dispatcher.submit} or {@link Dispatcher.submitMany}.
 */
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { Intent } from '../../kernel/payment.ts';
import { JOBS, bullJobName, jobOptionsFor, type JobName, type JobPayload } from './catalog.ts';
import { reconcileJobId, submitJobId, submitQueueFor, type QueueName } from './names.ts';

/**
 * How many finished jobs each queue keeps (for the dashboard, and so a replayed job id collapses
 * into the job that ran). By count alone: an age limit as well made every job's finish run one more
 * range query on the completed set (issue 18's command budget), and the count already bounds the
 * memory it takes (docs/operations.md "Capacity").
 */
export const JOB_RETENTION = {
  removeOnComplete: { count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

/** A catalog job to add: its payload, deterministic id and optional delay. */
export interface JobToAdd<N extends JobName> {
  data: JobPayload<N>;
  jobId: string;
  delayMs?: number;
  /** Overrides the catalog's attempts (e.g. a schedule from configuration). */
  attempts?: number;
}

/** Where a submit job is in its queue, for the sweep's lost-job repair. */
export type SubmitJobState = 'missing' | 'waiting' | 'failed' | 'completed';

/** A job that failed for good (its attempts spent), as {@link Dispatcher.failedJobs} finds it. */
export interface FailedJob<N extends JobName> {
  id: string;
  data: JobPayload<N>;
  /** When it failed last (epoch ms). */
  failedAt: number;
  /**
   * Runs it once more, attempts not reset: one attempt, with no backoff retries after it, so a job
   * that keeps failing is back in the failed set (and counted as failed) after each rerun.
   */
  rerun(): Promise<void>;
}

/** The queues as features use them (a port: built once in the composition root). */
export interface Dispatcher {
  /** Enqueues the submit job of the intent's current attempt and queue entry. */
  submit(intent: Intent): Promise<void>;
  /** {@link Dispatcher.submit} for many intents: one `addBulk` per queue. */
  submitMany(intents: readonly Submittable[]): Promise<void>;
  /** Where the submit job of the intent's current attempt and queue entry is. */
  submitJobState(intent: Intent): Promise<SubmitJobState>;
  /**
   * Runs the intent's submit job again after it ended without the intent leaving `queued`: a
   * failed job is retried, a completed one replaced.
   */
  rerunSubmit(intent: Intent, state: 'failed' | 'completed'): Promise<void>;
  /** Enqueues a reconcile check of the intent, `delayMs` from now, identified by its check number. */
  reconcile(
    intent: Intent,
    opts: {
      delayMs: number;
      cause: 'schedule' | 'webhook' | 'sweep' | 'lease' | 'manual';
      /** Sweep, lease and manual checks: the sweep run. */
      runId?: string;
      /** Webhook checks: the status the webhook claims (also what tells its job id apart). */
      claimed?: JobPayload<'reconcile.check'>['claimed'];
    },
  ): Promise<void>;
  /**
   * Enqueues a webhook-triggered check for an intent not written yet; the job retries (with
   * backoff) until the intent exists.
   */
  reconcileEarly(key: string, reference: string): Promise<void>;
  /** Adds catalog jobs of one name, in one round trip. */
  addMany<N extends JobName>(name: N, jobs: readonly JobToAdd<N>[]): Promise<void>;
  /**
   * Jobs of `name` in the failed set that failed at or before `failedBefore`, newest failure
   * first; at most `limit` failed jobs (of any name) are looked at. A payload the catalog's schema
   * refuses is left out.
   */
  failedJobs<N extends JobName>(
    name: N,
    opts: { failedBefore: number; limit: number },
  ): Promise<FailedJob<N>[]>;
  /** Creates or updates the job scheduler `id` that adds job `name` on a cron pattern. */
  schedule<N extends JobName>(
    id: string,
    name: N,
    pattern: string,
    data: JobPayload<N>,
    opts?: Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'>,
  ): Promise<void>;
  /** Pauses a queue for every worker (e.g. the gateway refused our credentials). */
  pause(name: QueueName): Promise<void>;
}

/** The dispatcher with its BullMQ queues, for the composition root, dashboard and metrics. */
export interface QueueDispatcher extends Dispatcher {
  queue(name: QueueName): Queue;
  /** Every shard's queue of that name (REDIS_SHARDS); `[queue(name)]` without shards. */
  queuesOf(name: QueueName): Queue[];
  /**
   * Re-creates every job scheduler this process registered with {@link Dispatcher.schedule} that
   * Redis no longer has (it restarted empty, or someone removed it); returns their ids. Run
   * periodically by the composition root, so schedules do not depend on a restart.
   */
  ensureSchedules(): Promise<string[]>;
  close(): Promise<void>;
}

/** What a submit job is built from. */
export type Submittable = Pick<
  Intent,
  'key' | 'type' | 'attempt' | 'amount' | 'currency' | 'reference' | 'enqueues' | 'incarnation'
>;

/** The submit job of an intent's current attempt and queue entry: the one place it is built. */
export function submitJob(intent: Submittable) {
  const name: JobName = intent.type === 'payout' ? 'payouts.submit' : 'charges.submit';
  const data: JobPayload<'charges.submit'> = {
    key: intent.key,
    attempt: intent.attempt,
    amount: intent.amount,
    currency: intent.currency,
  };
  return {
    queue: submitQueueFor(intent.type),
    name: bullJobName(name),
    data,
    opts: {
      ...jobOptionsFor(name),
      jobId: submitJobId(intent.reference, intent.enqueues, intent.incarnation),
    },
  };
}

/**
 * `onError` receives the queues' `error` events (they re-emit their connection's): without a
 * listener each reconnect attempt of an outage would print a raw stack.
 */
export function createDispatcher(
  connection: ConnectionOptions,
  prefix: string,
  onError: (err: Error) => void = () => undefined,
): QueueDispatcher {
  const queues = new Map<QueueName, Queue>();
  /** Schedulers this process registered: id → re-create it if missing (true when it did). */
  const schedules = new Map<string, () => Promise<boolean>>();
  const queue = (name: QueueName) => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, {
        connection,
        prefix,
        defaultJobOptions: JOB_RETENTION,
      });
      q.on('error', onError);
      queues.set(name, q);
    }
    return q;
  };
  const add = async <N extends JobName>(name: N, job: JobToAdd<N>) => {
    await queue(JOBS[name].queue).add(bullJobName(name), job.data, optionsOf(name, job));
  };
  const submitMany = async (intents: readonly Submittable[]) => {
    const byQueue = new Map<QueueName, ReturnType<typeof submitJob>[]>();
    for (const intent of intents) {
      const job = submitJob(intent);
      let list = byQueue.get(job.queue);
      if (!list) byQueue.set(job.queue, (list = []));
      list.push(job);
    }
    await Promise.all([...byQueue].map(([q, jobs]) => queue(q).addBulk(jobs)));
  };
  return {
    async submit(intent) {
      const job = submitJob(intent);
      await queue(job.queue).add(job.name, job.data, job.opts);
    },
    submitMany,
    async submitJobState(intent) {
      const job = submitJob(intent);
      const state = await queue(job.queue).getJobState(job.opts.jobId);
      if (state === 'unknown') return 'missing';
      if (state === 'failed' || state === 'completed') return state;
      return 'waiting';
    },
    async rerunSubmit(intent, state) {
      const job = submitJob(intent);
      const existing = await queue(job.queue).getJob(job.opts.jobId);
      if (state === 'failed') {
        await existing?.retry('failed');
        return;
      }
      await existing?.remove();
      await queue(job.queue).add(job.name, job.data, job.opts);
    },
    async reconcile(intent, { delayMs, cause, runId, claimed }) {
      const jobId = reconcileJobId(
        intent,
        cause === 'webhook' ? 'webhook' : cause === 'schedule' ? 'check' : 'sweep',
        cause === 'webhook' ? claimed : runId,
      );
      await add('reconcile.check', {
        data: {
          key: intent.key,
          cause,
          checks: intent.checks,
          ...(cause === 'webhook' && claimed !== undefined ? { claimed } : {}),
        },
        jobId,
        delayMs,
      });
    },
    async reconcileEarly(key, reference) {
      await add('reconcile.check', {
        data: { key: key as JobPayload<'reconcile.check'>['key'], cause: 'webhook' },
        jobId: `wh-${reference}-early`,
      });
    },
    async addMany(name, jobs) {
      if (jobs.length === 0) return;
      await queue(JOBS[name].queue).addBulk(
        jobs.map((job) => ({
          name: bullJobName(name),
          data: job.data,
          opts: optionsOf(name, job),
        })),
      );
    },
    async failedJobs(name, { failedBefore, limit }) {
      const spec = JOBS[name];
      const found: FailedJob<typeof name>[] = [];
      // Newest first: a job that keeps failing is near the top, old failures nobody wants at the
      // bottom do not crowd it out.
      for (const job of await queue(spec.queue).getJobs(['failed'], 0, limit - 1, false)) {
        if (job.name !== bullJobName(name) || !job.id) continue;
        const failedAt = job.finishedOn ?? job.timestamp;
        if (failedAt > failedBefore) continue;
        const data = spec.schema.safeParse(job.data);
        if (!data.success) continue;
        found.push({
          id: job.id,
          data: data.data as JobPayload<typeof name>,
          failedAt,
          rerun: () => job.retry('failed'),
        });
      }
      return found;
    },
    async schedule(id, name, pattern, data, opts = {}) {
      const q = queue(JOBS[name].queue);
      const upsert = async () => {
        await q.upsertJobScheduler(
          id,
          { pattern },
          { name: bullJobName(name), data, opts: { ...jobOptionsFor(name), ...opts } },
        );
      };
      await upsert();
      schedules.set(id, async () => {
        if (await q.getJobScheduler(id)) return false;
        await upsert();
        return true;
      });
    },
    async ensureSchedules() {
      const recreated: string[] = [];
      for (const [id, ensure] of schedules) if (await ensure()) recreated.push(id);
      return recreated;
    },
    async pause(name) {
      await queue(name).pause();
    },
    queue,
    queuesOf: (name) => [queue(name)],
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}

function optionsOf<N extends JobName>(name: N, job: JobToAdd<N>): JobsOptions {
  return {
    ...jobOptionsFor(name),
    ...(job.attempts !== undefined ? { attempts: job.attempts } : {}),
    jobId: job.jobId,
    ...(job.delayMs ? { delay: Math.max(0, job.delayMs) } : {}),
  };
}
