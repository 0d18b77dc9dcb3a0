/**
 * The one wrapper that turns error kinds into BullMQ behaviour (docs/product.md §5):
 * - retryable → rethrown: BullMQ retries with capped full-jitter backoff;
 * - rate_limited → `worker.rateLimit(Retry-After)` and the job goes back without using an attempt;
 * - outcome_unknown → the job completes (submissions) or retries (reads), per the catalog;
 * - fatal → UnrecoverableError, no retry;
 * - authFailure (401/403) → the queue is paused, an alert raised, the job parked for later.
 * Handlers record what the error means for the intent before rethrowing; they never touch BullMQ.
 */
import {
  DelayedError,
  UnrecoverableError,
  Worker,
  type Job,
  type MinimalJob,
  type Processor,
} from 'bullmq';
import { BillingError, OutcomeUnknownError } from '../../kernel/errors.ts';
import type { Logger } from '../logger.ts';
import {
  JOBS,
  backoffDelayMs,
  bullJobName,
  catalogNameOf,
  type JobName,
  type JobPayload,
  type JobsOf,
} from './catalog.ts';
import type { QueueName } from './names.ts';

/** Thrown by a handler to park its job until `until` (e.g. another worker's lease). */

/** The longest a gateway's `Retry-After` pauses a queue (5 minutes; docs/sayswitch-wire.md). */
export const MAX_RATE_LIMIT_WAIT_MS = 300_000;

export class DelayRequest extends Error {
  constructor(readonly until: number) {
    super(`delayed until ${new Date(until).toISOString()}`);
    this.name = 'DelayRequest';
  }
}

/** The log calls handlers make; every line carries the queue, job name and job id. */
export type JobLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface HandlerContext {
  job: Job;
  log: JobLog;
}

/**
 * Binds job fields to each line without a pino child per job: children rebuild serializers and
 * redaction, which showed up in the throughput profile for no benefit.
 */
function jobLog(logger: Logger, bindings: Record<string, unknown>): JobLog {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (obj: unknown, msg?: string): void => {
      if (!logger.isLevelEnabled(level)) return;
      if (typeof obj === 'string') logger[level](bindings, obj);
      else logger[level]({ ...bindings, ...(obj as object) }, msg);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export type Handler<N extends JobName> = (
  data: JobPayload<N>,
  ctx: HandlerContext,
) => Promise<unknown>;

/** Exactly one handler per job of queue `Q`: no job missing, none from another queue. */
export type HandlersFor<Q extends QueueName> = { [N in JobsOf<Q>]: Handler<N> };

export interface ProcessorDeps {
  logger: Logger;
  now: () => number;
  /** Called on a 401/403: pause the queue and publish an alert. */
  onAuthFailure: (queueName: QueueName, err: BillingError) => Promise<void>;
  /** How long a job waits after an auth failure before it is tried again. */
  authRetryDelayMs?: number;
}

/** Parks the job in `delayed` until `until`. Only valid inside a processor that owns `token`. */
async function park(job: Job, token: string | undefined, until: number): Promise<never> {
  await job.moveToDelayed(until, token);
  throw new DelayedError();
}

/**
 * `p`, or an outcome_unknown error once `ms` passed. One promise and one timer per job; the error
 * (its message and stack) is built only when the timer fires, never on the path that succeeds.
 */
function withTimeout<T>(p: Promise<T>, ms: number, name: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new OutcomeUnknownError(`${name} handler exceeded ${ms} ms`, 'handler_timeout')),
      ms,
    );
    p.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        // Passed on as it is, as Promise.race did.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        reject(err);
      },
    );
  });
}

/**
 * Builds the BullMQ processor for one queue from handlers keyed by catalog job name. Payloads are
 * validated with the catalog's zod schema (or its `quick` check, which accepts nothing the schema
 * refuses); an invalid payload is unrecoverable.
 */
export function createProcessor<Q extends QueueName>(
  queueName: Q,
  handlers: HandlersFor<Q>,
  deps: ProcessorDeps,
  getWorker: () => Worker,
): Processor {
  type N = JobsOf<Q>;
  const byBullName = new Map<string, N>();
  for (const name of Object.keys(handlers) as N[]) byBullName.set(bullJobName(name), name);

  return async (job: Job, token?: string) => {
    const name = byBullName.get(job.name);
    if (name === undefined)
      throw new UnrecoverableError(`no handler for job "${job.name}" on ${queueName}`);
    const spec = JOBS[name];
    let data: unknown = 'quick' in spec ? spec.quick(job.data) : undefined;
    if (data === undefined) {
      const parsed = spec.schema.safeParse(job.data);
      if (!parsed.success) {
        throw new UnrecoverableError(
          `invalid ${name} payload: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      }
      data = parsed.data;
    }
    const log = jobLog(deps.logger, { queue: queueName, job: job.name, jobId: job.id });
    const handler = handlers[name] as Handler<N>;
    try {
      return await withTimeout(handler(data as JobPayload<N>, { job, log }), spec.timeoutMs, name);
    } catch (err) {
      if (err instanceof DelayRequest) return park(job, token, err.until);
      if (!(err instanceof BillingError)) throw err;
      if (err.authFailure) {
        log.error({ code: err.code }, 'gateway refused our credentials: pausing the queue');
        await deps.onAuthFailure(queueName, err);
        return park(job, token, deps.now() + (deps.authRetryDelayMs ?? 60_000));
      }
      switch (err.kind) {
        case 'retryable':
          log.warn(
            { code: err.code, attemptsMade: job.attemptsMade },
            'provably unsent; will retry',
          );
          throw err;
        case 'rate_limited':
          log.warn(
            { code: err.code, retryAfterMs: err.retryAfterMs },
            'rate limited by the gateway',
          );
          // BullMQ's rate limit is a Redis `SET … PX ms`, which refuses 0: a `Retry-After: 0` (or
          // an HTTP date already past) is "retry now", i.e. the shortest wait Redis takes. The
          // wait pauses the whole queue, so it is capped: a day's `Retry-After` (a typo, a
          // misconfigured proxy) would stop every payment for a day; past the cap the next try
          // asks again, and at worst meets another 429.
          await getWorker().rateLimit(
            Math.min(MAX_RATE_LIMIT_WAIT_MS, Math.max(1, err.retryAfterMs ?? 1_000)),
          );
          throw Worker.RateLimitError();
        case 'outcome_unknown':
          if (spec.onOutcomeUnknown === 'retry') throw err;
          log.warn({ code: err.code }, 'outcome unknown; handed to the reconciler');
          return { outcome: 'unknown', code: err.code };
        case 'fatal':
          throw new UnrecoverableError(`${err.code}: ${err.message}`);
      }
    }
  };
}

/** BullMQ `settings.backoffStrategy` computing the catalog's capped full-jitter backoff. */
export function catalogBackoffStrategy(
  attemptsMade: number,
  _type?: string,
  _err?: Error,
  job?: MinimalJob,
): number {
  const name = job ? catalogNameOf(job.queueName, job.name) : undefined;
  return backoffDelayMs(
    attemptsMade,
    name ? JOBS[name].backoff : { baseMs: 1_000, capMs: 300_000 },
  );
}
