/**
 * Outbound notifications (PRODUCT.md section 8): the relay turns each event of `<prefix>:events`
 * into a `notifications.deliver` job, and a worker POSTs it to NOTIFY_URL, retried on
 * NOTIFY_RETRY_SCHEDULE until a 2xx. Started by the reconciler role when `config.notify` is set.
 */
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { QUEUES } from '../infra/queues/names.ts';
import type { ProcessorDeps } from '../infra/queues/processor.ts';
import { startWorker } from '../infra/queues/worker-factory.ts';
import { createDeliverHandler } from './deliver.ts';
import { startRelay, type RelayHooks } from './relay.ts';

export { createDeliverHandler, readNotification, type NotificationBody } from './deliver.ts';
export { NOTIFY_GROUP, notificationJobId, startRelay, type Relay } from './relay.ts';
export {
  DEFAULT_TOLERANCE_SEC,
  SIGNATURE_HEADER,
  signNotification,
  verifyNotification,
} from './signature.ts';

/**
 * What the notifier needs of the app. `App` (app/composition.ts) satisfies it; it is spelled out here
 * because app/composition.ts imports this module, and importing `App` back would be a cycle.
 */
export interface NotifierApp {
  config: Config;
  logger: Logger;
  clock: Clock;
  redis: Redis;
  dispatcher: Dispatcher;
}

export interface NotifierOptions {
  /**
   * The worker's processor deps; pass composition's so every worker shares them. By default a
   * minimal set: delivery never raises an auth failure (a merchant's 401 is just a refusal).
   */
  processorDeps?: ProcessorDeps;
  /** Worker concurrency. Default `config.worker.concurrency`. */
  concurrency?: number;
  /** Worker lock duration (pass the other workers' setting). Default the worker factory's. */
  lockDurationMs?: number;
  /** Relay consumer name (default: host, pid and a random tail). */
  consumer?: string;
  /** Relay XREADGROUP block time. Default 5 000. */
  blockMs?: number;
  /** Pending entries of a dead consumer are claimed after this long. Default 60 000. */
  claimIdleMs?: number;
  relayHooks?: RelayHooks;
}

/** A running notifier. */
export interface Notifier {
  /** The delivery worker (for readiness checks and tests); {@link Notifier.stop} closes it. */
  worker: Worker;
  isOpen(): boolean;
  /** Stops the relay first (no new jobs), then the worker (letting an in-flight POST finish). */
  stop(): Promise<void>;
}

/**
 * The delay before try n+1 after n failed tries: the n-th schedule entry, the last one repeated.
 * With BullMQ's attempts = schedule length + 1, the last entry is used once.
 */
export function notifyBackoffMs(scheduleMs: readonly number[]): (attemptsMade: number) => number {
  return (n) => scheduleMs[Math.min(Math.max(0, n - 1), scheduleMs.length - 1)] ?? 0;
}

/** ProcessorDeps for the notifications worker when the caller has none to share. */
export function notifierProcessorDeps(app: NotifierApp): ProcessorDeps {
  return {
    logger: app.logger,
    now: () => app.clock.now(),
    onAuthFailure: (queueName, err) => {
      // Unreachable today (delivery never sets authFailure); logged rather than pausing.
      app.logger.error({ queue: queueName, code: err.code }, 'unexpected auth failure');
      return Promise.resolve();
    },
  };
}

/**
 * Starts the relay and the delivery worker. Requires `config.notify` (NOTIFY_URL and
 * NOTIFY_SECRET); throws otherwise.
 */
export async function startNotifier(
  app: NotifierApp,
  opts: NotifierOptions = {},
): Promise<Notifier> {
  const notify = app.config.notify;
  if (!notify) throw new Error('startNotifier: NOTIFY_URL is not configured');
  const prefix = app.config.redis.prefix;
  const scheduleMs = notify.retryScheduleMs;

  const handler = createDeliverHandler({
    redis: app.redis,
    prefix,
    url: notify.url,
    secret: notify.secret,
    now: () => app.clock.now(),
  });
  const worker = startWorker(
    QUEUES.notifications,
    { 'notifications.deliver': handler },
    opts.processorDeps ?? notifierProcessorDeps(app),
    {
      connection: app.redis,
      prefix,
      concurrency: opts.concurrency ?? app.config.worker.concurrency,
      lockDurationMs: opts.lockDurationMs,
      backoffMs: notifyBackoffMs(scheduleMs),
    },
  );
  try {
    await worker.waitUntilReady();
  } catch (err) {
    await worker.close(true);
    throw err;
  }

  const relay = await startRelay({
    redis: app.redis,
    prefix,
    dispatcher: app.dispatcher,
    logger: app.logger,
    attempts: scheduleMs.length + 1,
    consumer: opts.consumer,
    blockMs: opts.blockMs,
    claimIdleMs: opts.claimIdleMs,
    hooks: opts.relayHooks,
  }).catch(async (err: unknown) => {
    await worker.close(true);
    throw err;
  });

  let open = true;
  return {
    worker,
    isOpen: () => open,
    async stop() {
      if (!open) return;
      await relay.stop();
      await worker.close();
      open = false;
    },
  };
}
