/**
 * What subscription management (service.ts, manage.ts) needs, and how it is built from the
 * application's ports and configuration.
 */
import type { Clock } from '../kernel/clock.ts';
import type { IntentStore, RequestHasher, Sealer } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { SubscriptionStore } from './ports.ts';

export interface SubscriptionServiceDeps {
  subs: SubscriptionStore;
  /** For `show`: the states of the subscription's recent charges. */
  intents: IntentStore;
  /** Resume re-schedules open dunning retries; test clocks enqueue their steps. */
  dispatcher: Dispatcher;
  sealer: Sealer;
  clock: Clock;
  /** Keys the request hash, so a stored hash reveals nothing about a card token. */
  hasher: RequestHasher;
  logger: Logger;
  /** TRIAL_WILL_END_NOTICE. */
  trialWillEndNoticeMs: number;
  /** Test clocks exist only in test mode (config `testMode`: a `sk_test_` secret key). */
  testMode: boolean;
}

/** What the service needs of the application (the composition root's `App` fits). */
export interface ServiceApp {
  config: {
    scheduler: { trialWillEndNoticeMs: number };
    testMode: boolean;
  };
  /** The subscription store, built once by the composition root. */
  subscriptions: SubscriptionStore;
  store: IntentStore;
  dispatcher: Dispatcher;
  sealer: Sealer;
  /** Request digests (DATA_ENCRYPTION_KEY), built once by the composition root. */
  hasher: RequestHasher;
  clock: Clock;
  logger: Logger;
}

/** The service's dependencies from the application's ports. */
export function subscriptionServiceDeps(app: ServiceApp): SubscriptionServiceDeps {
  return {
    subs: app.subscriptions,
    intents: app.store,
    dispatcher: app.dispatcher,
    sealer: app.sealer,
    clock: app.clock,
    hasher: app.hasher,
    logger: app.logger,
    trialWillEndNoticeMs: app.config.scheduler.trialWillEndNoticeMs,
    testMode: app.config.testMode,
  };
}
