/**
 * Replaces a BullMQ worker that stopped taking work. After a Redis master failover a worker can
 * stay alive yet never fetch again (upstream taskforcesh/bullmq#648, #3088: seen here on a Redis
 * Cluster, after "Missing lock for job … moveToFinished"), and its queue's jobs — reconciliations
 * of payments in doubt among them — wait until someone restarts the process. Nothing is lost, but
 * payments stay `unknown`. The watchdog looks at each worker's queue from the outside every few
 * seconds: when jobs are due (waiting, prioritized, delayed past their time, or active with no lock
 * left, which only a live worker's stalled check requeues) and the worker, with free slots, has
 * started none of them for `stuckAfterMs`, it builds a fresh worker for the same queue and
 * force-closes the old one. That is safe because every handler is idempotent (claims, leases and
 * derived references): a job the old worker still runs loses its lock and runs again, exactly as
 * after a crash. docs/operations.md, "Redis Cluster" and "Redis outages".
 */
import type { Redis } from 'ioredis';
import type { Worker } from 'bullmq';
import type { Logger } from '../logger.ts';
import { workerActivity } from './worker-factory.ts';

/** What one look at a worker's queue found. */
export interface QueueBacklog {
  paused: boolean;
  wait: number;
  prioritized: number;
  /** Delayed jobs whose time has come (at most 1: only the earliest is read). */
  delayedDue: number;
  /** Active jobs whose lock is gone (among the first few active jobs). */
  activeWithoutLock: number;
}

export interface WorkerSlot {
  /** The worker now serving the slot (replaced in place in `workers`). */
  readonly worker: Worker;
}

export interface WorkerWatchdogDeps {
  /** The live list of workers; a replaced worker is swapped for its successor at its index. */
  workers: Worker[];
  /** Builds a new worker for the same queue, prefix and options as `old`. */
  recreate: (old: Worker) => Worker;
  /** Probes the queues (a connection that waits through outages is fine: probes time out). */
  redis: Redis;
  logger: Logger;
  /** Probes only while Redis answers. */
  isUp: () => boolean;
  now: () => number;
  /** A worker that saw due work and started nothing for this long is replaced. */
  stuckAfterMs: number;
  intervalMs?: number;
  /** Told of each replacement (metrics). */
  onReplaced?: (fresh: Worker, old: Worker) => void;
}

export interface WorkerWatchdog {
  /** One look at every worker now (also what the timer runs). */
  check(): Promise<void>;
  stop(): void;
}

/** How long a probe of one queue may take; a slower one counts as no answer. */
const PROBE_TIMEOUT_MS = 2_000;
/** How many active jobs a probe checks for a lock. */
const ACTIVE_SAMPLE = 10;
/** How long a replaced worker may take to close before it is left behind. */
const CLOSE_OLD_MS = 5_000;

/** Reads a worker's queue: one pipeline (every key shares the queue's hash tag). */
export async function probeBacklog(
  redis: Redis,
  queue: Pick<Worker, 'keys' | 'toKey'>,
  now: number,
): Promise<QueueBacklog> {
  const k = queue.keys;
  const replies = await redis
    .multi()
    .hexists(k.meta!, 'paused')
    .llen(k.wait!)
    .zcard(k.prioritized!)
    .zrange(k.delayed!, '0', '0', 'WITHSCORES')
    .lrange(k.active!, 0, ACTIVE_SAMPLE - 1)
    .exec();
  if (!replies) throw new Error('probe transaction aborted');
  const [paused, wait, prioritized, delayed, active] = replies.map(([err, v]) => {
    if (err) throw err;
    return v;
  }) as [number, number, number, string[], string[]];
  // BullMQ scores a delayed job by its due time in ms times 0x1000 (plus a counter).
  const earliest = delayed.length === 2 ? Math.floor(Number(delayed[1]) / 0x1000) : Infinity;
  let activeWithoutLock = 0;
  if (active.length > 0) {
    const locks = redis.multi();
    for (const id of active) locks.exists(`${queue.toKey(id)}:lock`);
    const found = (await locks.exec()) ?? [];
    activeWithoutLock = found.filter(([err, v]) => !err && v === 0).length;
  }
  return {
    paused: paused === 1,
    wait,
    prioritized,
    delayedDue: earliest <= now ? 1 : 0,
    activeWithoutLock,
  };
}

/** Whether a backlog holds work a live worker would start now. */
export function hasDueWork(b: QueueBacklog): boolean {
  return !b.paused && b.wait + b.prioritized + b.delayedDue + b.activeWithoutLock > 0;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Watches `deps.workers`; each check probes every worker's queue once. */
export function startWorkerWatchdog(deps: WorkerWatchdogDeps): WorkerWatchdog {
  const log = deps.logger.child({ component: 'worker-watchdog' });
  const intervalMs = deps.intervalMs ?? Math.min(5_000, Math.max(250, deps.stuckAfterMs / 4));
  /** Per worker: since when due work has waited with nothing started. */
  const dueSince = new WeakMap<Worker, number>();
  /** Workers whose queue the last probe could not read (logged once per streak). */
  const unreadable = new WeakSet<Worker>();
  let stopped = false;
  let running: Promise<void> | undefined;

  const replace = async (index: number, old: Worker, backlog: QueueBacklog, waitedMs: number) => {
    const activity = workerActivity(old);
    const fresh = deps.recreate(old);
    deps.workers[index] = fresh;
    log.warn(
      {
        queue: old.name,
        prefix: old.opts.prefix,
        waitedMs,
        backlog,
        inFlight: activity?.running.size,
        running: old.isRunning(),
        paused: old.isPaused(),
      },
      'worker took no job for too long while jobs were due; replaced it with a new worker',
    );
    // Closing may hang on a connection that is itself the problem: it is not waited for long.
    void withTimeout(
      old.close(true).catch(() => undefined),
      CLOSE_OLD_MS,
    );
    await fresh
      .waitUntilReady()
      .catch((err: unknown) =>
        log.warn(
          { queue: fresh.name, err: { message: (err as Error).message } },
          'new worker not ready yet',
        ),
      );
    deps.onReplaced?.(fresh, old);
  };

  const once = async () => {
    if (!deps.isUp()) return;
    for (let i = 0; i < deps.workers.length && !stopped; i++) {
      const worker = deps.workers[i]!;
      const now = deps.now();
      let failure = 'no answer within 2 s';
      const backlog = await withTimeout(
        probeBacklog(deps.redis, worker, now).catch((err: unknown) => {
          failure = (err as Error).message;
          return undefined;
        }),
        PROBE_TIMEOUT_MS,
      );
      if (!backlog) {
        // No verdict across an outage: the clock starts again once the queue can be read.
        dueSince.delete(worker);
        if (!unreadable.has(worker)) {
          unreadable.add(worker);
          log.warn(
            { queue: worker.name, prefix: worker.opts.prefix, err: { message: failure } },
            'cannot read the queue of a worker; the watchdog skips it until it can',
          );
        }
        continue;
      }
      if (unreadable.delete(worker)) {
        log.info({ queue: worker.name, prefix: worker.opts.prefix }, 'queue readable again');
      }
      const activity = workerActivity(worker);
      const since = dueSince.get(worker);
      const busy = (activity?.running.size ?? 0) >= worker.concurrency;
      const progressed = since !== undefined && (activity?.lastStartAt ?? 0) >= since;
      if (!hasDueWork(backlog) || busy || progressed || stopped) {
        if (hasDueWork(backlog)) dueSince.set(worker, now);
        else dueSince.delete(worker);
        continue;
      }
      if (since === undefined) {
        dueSince.set(worker, now);
        continue;
      }
      // A job that lost its lock is requeued by a live worker's stalled check, which marks it on
      // one pass and moves it on the next (each `lockDuration` apart here): until then a healthy
      // worker has nothing to start.
      const ready = backlog.wait + backlog.prioritized + backlog.delayedDue > 0;
      const bound = ready
        ? deps.stuckAfterMs
        : Math.max(deps.stuckAfterMs, 3 * (worker.opts.lockDuration ?? 30_000));
      if (now - since >= bound) {
        dueSince.delete(worker);
        await replace(i, worker, backlog, now - since);
      }
    }
  };
  const check = () => (running ??= once().finally(() => (running = undefined)));
  const timer = setInterval(() => void check().catch(() => undefined), intervalMs);
  timer.unref();
  return {
    check,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
