/**
 * Subscriptions: what the capability runs in each role (docs/subscriptions.md). The scheduler role
 * keeps the `subscriptions-tick` job scheduler on SCHEDULER_CRON (one per deployment however many
 * replicas upsert it), runs the `subscriptions` queue (ticks that bill what is due, dunning
 * retries, the steps of advancing test clocks) and the consumer that applies payment outcomes to
 * subscriptions.
 */
import type { Clock } from '../kernel/clock.ts';
import type { EventLog, IntentStore } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import { queueJobs, type CapabilityModule } from '../infra/module.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { clockStepSchema, kickAdvancingClocks, runClockStep } from './clock-runner.ts';
import { createDunningHandler } from './dunning.ts';
import { TICK_SCHEDULER_ID } from './jobs.ts';
import { startSubscriptionOutcomes } from './outcome-consumer.ts';
import type { DunningPolicy } from './outcomes.ts';
import type { SubscriptionStore } from './ports.ts';
import { runTick } from './tick.ts';

/** Ticks and dunning retries in parallel per process. */
const QUEUE_CONCURRENCY = 4;

export interface SubscriptionsDeps {
  subs: SubscriptionStore;
  intents: IntentStore;
  dispatcher: Dispatcher;
  events: EventLog;
  clock: Clock;
  logger: Logger;
  /** SCHEDULER_CRON; null registers no job scheduler (tests drive ticks with `runTick`). */
  tickCron: string | null;
  /** CATCH_UP_MAX_PERIODS: at most this many periods per subscription per catch-up. */
  catchUpMaxPeriods: number;
  /** Test clocks: between two settle checks of an advancing clock (default 50 ms). */
  clockPollMs?: number;
  /** DUNNING_SCHEDULE and DUNNING_EXHAUSTED. */
  dunning: DunningPolicy;
  /** Tuning of the outcome consumer (tests; defaults suit production). */
  outcomes?: {
    /** Consumer name (default: host, pid and a random tail). */
    consumer?: string;
    /** XREADGROUP block time; also how long stopping may take. Default 1 000. */
    blockMs?: number;
    /** Pending entries of a dead consumer are claimed after this long. Default 30 000. */
    claimIdleMs?: number;
  };
}

export const subscriptionsModule: CapabilityModule<SubscriptionsDeps> = {
  name: 'subscriptions',
  roles: {
    scheduler: (deps) => ({
      // Ticks and retries only touch Redis: a gateway auth failure cannot reach them, so the
      // default (logged) applies.
      jobs: [
        queueJobs(
          'subscriptions',
          {
            // A job naming a test clock is a step of that clock; the cron's ticks carry nothing
            // and also restart any clock whose chain of steps lost a job.
            'subscriptions.tick': async (data: Record<string, unknown>) => {
              const clockStep = clockStepSchema.safeParse(data);
              if (clockStep.success) return runClockStep(deps, clockStep.data);
              const result = await runTick(deps, deps.clock.now());
              const kicked = await kickAdvancingClocks(deps);
              return kicked > 0 ? { ...result, clocksKicked: kicked } : result;
            },
            'subscriptions.dunning': createDunningHandler(deps),
          },
          { concurrency: QUEUE_CONCURRENCY },
        ),
      ],
      // Once the worker is ready: the job scheduler, then the outcome consumer (stopped first).
      start: async () => {
        if (deps.tickCron !== null) {
          await deps.dispatcher.schedule(
            TICK_SCHEDULER_ID,
            'subscriptions.tick',
            deps.tickCron,
            {},
            { removeOnComplete: { count: 1_000 }, removeOnFail: { count: 1_000 } },
          );
        }
        const consumer = await startSubscriptionOutcomes({ ...deps, ...deps.outcomes });
        deps.logger.info(
          { component: 'subscription-scheduler', cron: deps.tickCron ?? 'off' },
          'subscription scheduler started',
        );
        return consumer;
      },
    }),
  },
};
