/**
 * Outbound notifications (docs/notifications.md): the relay turns each event of `<prefix>:events`
 * into a `notifications.deliver` job, and a worker POSTs it to NOTIFY_URL, retried on
 * NOTIFY_RETRY_SCHEDULE until a 2xx. Runs in the reconciler role when NOTIFY_URL is set.
 */
import type { Clock } from '../kernel/clock.ts';
import type { EventLog } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import { queueJobs, type CapabilityModule } from '../infra/module.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { createDeliverHandler } from './deliver.ts';
import { startRelay, type RelayHooks } from './relay.ts';

export interface NotificationsDeps {
  events: EventLog;
  dispatcher: Dispatcher;
  logger: Logger;
  clock: Clock;
  /** NOTIFY_URL, NOTIFY_SECRET, NOTIFY_SECRET_PREVIOUS and NOTIFY_RETRY_SCHEDULE. */
  notify: {
    url: string;
    secret: string;
    previousSecret?: string;
    retryScheduleMs: readonly number[];
  };
  /** Tuning of the relay (tests; defaults suit production). */
  relay?: {
    /** Consumer name (default: host, pid and a random tail). */
    consumer?: string;
    /** XREADGROUP block time. Default 5 000. */
    blockMs?: number;
    /** Pending entries of a dead consumer are claimed after this long. Default 60 000. */
    claimIdleMs?: number;
    hooks?: RelayHooks;
  };
}

/**
 * The delay before try n+1 after n failed tries: the n-th schedule entry, the last one repeated.
 * With BullMQ's attempts = schedule length + 1, the last entry is used once.
 */
export function notifyBackoffMs(scheduleMs: readonly number[]): (attemptsMade: number) => number {
  return (n) => scheduleMs[Math.min(Math.max(0, n - 1), scheduleMs.length - 1)] ?? 0;
}

export const notificationsModule: CapabilityModule<NotificationsDeps> = {
  name: 'notifications',
  roles: {
    reconciler: (deps) => ({
      jobs: [
        queueJobs(
          'notifications',
          {
            'notifications.deliver': createDeliverHandler({
              events: deps.events,
              url: deps.notify.url,
              secret: deps.notify.secret,
              previousSecret: deps.notify.previousSecret,
              now: () => deps.clock.now(),
            }),
          },
          // Delivery never raises an auth failure (a merchant's 401 is just a refusal): the
          // default (logged) applies.
          { backoffMs: notifyBackoffMs(deps.notify.retryScheduleMs) },
        ),
      ],
      // The relay starts once the delivery worker is ready, and stops before it closes.
      start: () =>
        startRelay({
          events: deps.events,
          dispatcher: deps.dispatcher,
          logger: deps.logger,
          attempts: deps.notify.retryScheduleMs.length + 1,
          consumer: deps.relay?.consumer,
          blockMs: deps.relay?.blockMs,
          claimIdleMs: deps.relay?.claimIdleMs,
          hooks: deps.relay?.hooks,
        }),
    }),
  },
};
