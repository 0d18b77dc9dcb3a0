/**
 * Subscriptions: what the capability runs in each role. The scheduler role bills what is due
 * (the tick on SCHEDULER_CRON), runs dunning retries and applies payment outcomes to
 * subscriptions.
 */
import type { CapabilityModule } from '../infra/module.ts';
import { startSubscriptionScheduler, type SchedulerApp } from './tick.ts';

export type SubscriptionsDeps = SchedulerApp;

export const subscriptionsModule: CapabilityModule<SubscriptionsDeps> = {
  name: 'subscriptions',
  roles: {
    scheduler: (deps) => ({ start: () => startSubscriptionScheduler(deps) }),
  },
};
