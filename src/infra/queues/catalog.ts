/**
 * The job catalog: per job name, its queue, zod payload schema, attempts, backoff and timeout.
 * Payloads carry intent keys and amounts, never card tokens, account secrets or keys: workers
 * load what they need from the store (a notification carries its event as published).
 *
 * Typed per queue: `startWorker(queue, handlers)` takes exactly the jobs of that queue
 * ({@link HandlersFor}), so a missing handler, or one for another queue's job, does not compile
 * (test/unit/catalog-types.test.ts proves both).
 */
import { z } from 'zod';
import { SUBMIT_HANDLER_TIMEOUT_MS } from '../../config/limits.ts';
import { intentKeySchema, isIntentKey } from '../../kernel/ids.ts';
import { QUEUES, type QueueName } from './names.ts';

const submitPayload = z.object({
  key: intentKeySchema,
  attempt: z.number().int().min(1),
  amount: z.number().int().positive(),
  currency: z.string(),
});

const isInt = (v: unknown, min: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/**
 * What {@link submitPayload} returns for a payload it accepts, checked without zod (the submit
 * workers' hot path: zod's parse showed in issue 18's profile); undefined for anything else, so
 * the schema decides and words the error. It accepts nothing the schema refuses
 * (test/unit/job-payload-quick.test.ts compares the two).
 */
export function quickSubmitPayload(data: unknown): z.output<typeof submitPayload> | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const { key, attempt, amount, currency } = data as Record<string, unknown>;
  if (typeof key !== 'string' || !isIntentKey(key)) return undefined;
  if (!isInt(attempt, 1) || !isInt(amount, 1) || typeof currency !== 'string') return undefined;
  return { key, attempt, amount, currency };
}

const reconcilePayload = z.object({
  key: intentKeySchema,
  cause: z.enum(['schedule', 'webhook', 'sweep', 'lease', 'manual']),
  /** For scheduled checks: the check count the job was scheduled for; a stale one only verifies. */
  checks: z.number().int().min(0).optional(),
  /**
   * For webhook checks: the status the webhook claims. A hint, never adopted: it only makes the
   * check look again where no scheduled check will (payments/reconcile.ts).
   */
  claimed: z.enum(['succeeded', 'failed', 'reversed', 'pending']).optional(),
});

/**
 * One event's delivery (src/notifications/relay.ts adds it, deliver.ts runs it). `event` is the
 * stream entry's `type`, `at` and `data` fields verbatim, as the relay read them: the delivery
 * builds the signed body from them, so no attempt (nor a dashboard retry) needs the entry, which
 * the stream's MAXLEN trims. Jobs added before it was carried have none: their delivery reads the
 * entry at `streamId`. Event data holds no card tokens or secrets (docs/notifications.md).
 */
const notifyPayload = z.object({
  eventId: z.string().min(1),
  streamId: z.string().min(1),
  event: z.object({ type: z.string(), at: z.string(), data: z.string() }).optional(),
});

export type Backoff = { baseMs: number; capMs: number } | { scheduleMs: readonly number[] };

export interface JobSpec<S extends z.ZodType> {
  queue: QueueName;
  schema: S;
  /** A check without zod of what the schema accepts, for hot jobs; undefined: ask the schema. */
  quick?: (data: unknown) => z.output<S> | undefined;
  /** Total tries BullMQ makes for `retryable` errors. */
  attempts: number;
  /** Exponential full-jitter backoff, capped; or a fixed schedule of delays. */
  backoff: Backoff;
  /** The handler is abandoned (and the job's fate decided by its error kind) after this long. */
  timeoutMs: number;
  /**
   * What an `outcome_unknown` error does to the job: a submission completes (the intent is
   * `unknown` and the reconciler takes over: resubmitting could pay twice); a read retries.
   */
  onOutcomeUnknown: 'complete' | 'retry';
}

export const JOBS = {
  'charges.submit': {
    queue: QUEUES.charges,
    schema: submitPayload,
    quick: quickSubmitPayload,
    attempts: 8,
    backoff: { baseMs: 1_000, capMs: 300_000 },
    // Bounds SAYSWITCH_TIMEOUT_MS at load (config/limits.ts): never fires while a call runs.
    timeoutMs: SUBMIT_HANDLER_TIMEOUT_MS,
    onOutcomeUnknown: 'complete',
  },
  'payouts.submit': {
    queue: QUEUES.payouts,
    schema: submitPayload,
    quick: quickSubmitPayload,
    attempts: 8,
    backoff: { baseMs: 1_000, capMs: 300_000 },
    // Bounds SAYSWITCH_TIMEOUT_MS at load (config/limits.ts): never fires while a call runs.
    timeoutMs: SUBMIT_HANDLER_TIMEOUT_MS,
    onOutcomeUnknown: 'complete',
  },
  'reconcile.check': {
    queue: QUEUES.reconcile,
    schema: reconcilePayload,
    attempts: 10,
    backoff: { baseMs: 2_000, capMs: 600_000 },
    timeoutMs: 60_000,
    onOutcomeUnknown: 'retry',
  },
  'reconcile.sweep': {
    queue: QUEUES.reconcile,
    schema: z.object({ olderThanMs: z.number().int().nonnegative().optional() }),
    attempts: 3,
    backoff: { baseMs: 5_000, capMs: 60_000 },
    timeoutMs: 300_000,
    onOutcomeUnknown: 'retry',
  },
  'notifications.deliver': {
    queue: QUEUES.notifications,
    schema: notifyPayload,
    // docs/notifications.md: 1m, 5m, 30m, 2h, 12h, 24h, then it stays failed
    // (visible and retryable in the dashboard).
    attempts: 7,
    backoff: { scheduleMs: [60_000, 300_000, 1_800_000, 7_200_000, 43_200_000, 86_400_000] },
    timeoutMs: 30_000,
    onOutcomeUnknown: 'retry',
  },
  'subscriptions.tick': {
    queue: QUEUES.subscriptions,
    schema: z.object({}).passthrough(),
    attempts: 3,
    backoff: { baseMs: 5_000, capMs: 60_000 },
    timeoutMs: 300_000,
    onOutcomeUnknown: 'retry',
  },
  'subscriptions.dunning': {
    queue: QUEUES.subscriptions,
    schema: z.object({
      subscriptionId: z.string().min(1),
      key: intentKeySchema,
      step: z.number().int().min(0),
    }),
    attempts: 5,
    backoff: { baseMs: 5_000, capMs: 300_000 },
    timeoutMs: 60_000,
    onOutcomeUnknown: 'retry',
  },
} as const satisfies Record<string, JobSpec<z.ZodType>>;

export type JobName = keyof typeof JOBS;
export type JobPayload<N extends JobName> = z.output<(typeof JOBS)[N]['schema']>;
/** The catalog jobs that run on queue `Q`. */
export type JobsOf<Q extends QueueName> = {
  [N in JobName]: (typeof JOBS)[N]['queue'] extends Q ? N : never;
}[JobName];

/** BullMQ job name within its queue (the part after the dot). */
export function bullJobName(name: JobName): string {
  return name.slice(name.indexOf('.') + 1);
}

/**
 * Delay before the next try. Exponential: full jitter (AWS architecture blog), capped: random in
 * [0, min(cap, base·2^(n-1))]. Schedule: the n-th delay, the last one repeated.
 */
export function backoffDelayMs(attemptsMade: number, spec: Backoff, random = Math.random): number {
  if ('scheduleMs' in spec) {
    const i = Math.min(Math.max(0, attemptsMade - 1), spec.scheduleMs.length - 1);
    return spec.scheduleMs[i] ?? 0;
  }
  const ceiling = Math.min(spec.capMs, spec.baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.floor(random() * ceiling);
}

/** The catalog entry of a BullMQ job, from its queue and job name. */
export function catalogNameOf(queueName: string, jobName: string): JobName | undefined {
  return (Object.keys(JOBS) as JobName[]).find(
    (n) => JOBS[n].queue === queueName && bullJobName(n) === jobName,
  );
}

/** Job options for adding a catalog job: attempts and the worker's `catalog` backoff strategy. */
export function jobOptionsFor(name: JobName) {
  return { attempts: JOBS[name].attempts, backoff: { type: 'catalog' } };
}
