/**
 * Recurring billing end to end for integration tests: the real application (openApp/startRoles
 * with the `worker` and `reconciler` roles) against a real sandbox, the subscriptions module's
 * scheduler-role contribution (dunning worker and outcome consumer; no cron) started through
 * `startContribution` as the composition root does, and a manual clock. Ticks are driven with
 * `runTick` at the clock's time; `settle()` waits until every charge, outcome and dunning retry
 * in flight has been dealt with.
 */
import type { Worker } from 'bullmq';
import { afterEach } from 'vitest';
import {
  openApp,
  startContribution,
  startRoles,
  subscriptionsDeps,
  type App,
  type RunningRoles,
} from '../../src/app/composition.ts';
import type { Clock } from '../../src/kernel/clock.ts';
import type { BillingEvent } from '../../src/kernel/events.ts';
import type { PaymentGateway } from '../../src/kernel/ports.ts';
import { SayswitchGateway } from '../../src/infra/gateway/sayswitch/client.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { SUBSCRIPTIONS_GROUP } from '../../src/subscriptions/outcome-consumer.ts';
import { subscriptionsModule } from '../../src/subscriptions/module.ts';
import { runTick, type TickDeps, type TickResult } from '../../src/subscriptions/tick.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import type { RedisSubscriptionStore } from '../../src/subscriptions/store/subscription-store.ts';
import {
  subscriptionServiceDeps,
  type SubscriptionServiceDeps,
} from '../../src/subscriptions/service.ts';
import { testConfig } from './app.ts';
import { track } from './leak-check.ts';
import { until } from './poll.ts';
import { cleanupPrefix, uniquePrefix } from './redis.ts';
import { startTestSandbox, TEST_SECRET_KEY } from './sandbox.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';

export interface ManualClock extends Clock {
  t: number;
  set(ms: number): void;
  advance(ms: number): void;
}

export function manualClock(start: number): ManualClock {
  const clock: ManualClock = {
    t: start,
    now: () => clock.t,
    set(ms) {
      clock.t = ms;
    },
    advance(ms) {
      clock.t += ms;
    },
  };
  return clock;
}

/** The subscriptions module's scheduler-role contribution, started as the composition root does. */
export interface RunningScheduler {
  /** The `subscriptions` queue's worker (ticks and dunning retries). */
  worker: Worker;
  /** Stops the outcome consumer, then lets the worker finish its jobs. */
  stop(): Promise<void>;
}

/**
 * Starts the subscriptions module's scheduler role on `app`: the tick job scheduler (unless
 * `cron: false`), the `subscriptions` worker and the outcome consumer.
 */
export async function startSubscriptionsScheduler(
  app: App,
  tuning: Parameters<typeof subscriptionsDeps>[1] = {},
): Promise<RunningScheduler> {
  const scheduler = subscriptionsModule.roles.scheduler;
  if (!scheduler) throw new Error('the subscriptions module has no scheduler role');
  const running = await startContribution(app, scheduler(subscriptionsDeps(app, tuning)));
  const [worker] = running.workers;
  if (!worker) throw new Error('no subscriptions worker');
  let open = true;
  return {
    worker,
    async stop() {
      if (!open) return;
      open = false;
      // As the composition root stops a role: what was started first, then the worker drains.
      await Promise.all(running.started.map((s) => s.stop()));
      await worker.close();
    },
  };
}

export interface SubsHarness {
  prefix: string;
  clock: ManualClock;
  app: App;
  running: RunningRoles;
  scheduler: RunningScheduler;
  service: SubscriptionServiceDeps;
  /** The app's subscription store (concrete: tests reach `save` and `count`). */
  subs: RedisSubscriptionStore;
  tickDeps: TickDeps;
  /** One tick at the clock's time (or `at`). */
  tick(at?: number): Promise<TickResult>;
  /** Waits until no charge is open, every outcome is applied and no dunning job is waiting. */
  settle(timeoutMs?: number): Promise<void>;
  /**
   * Waits until the outcome consumer has applied every event appended so far (whatever state the
   * payments are in: a challenge waiting for the customer is not awaited).
   */
  drained(timeoutMs?: number): Promise<void>;
  /** Every event of the stream, in order. */
  events(): Promise<(BillingEvent & { streamId: string })[]>;
  close(): Promise<void>;
}

export interface SubsHarnessOptions {
  sandboxUrl: string;
  start: number;
  env?: Record<string, string>;
  /** Wraps the real gateway (e.g. to decline chosen attempts). */
  gateway?: (real: PaymentGateway) => PaymentGateway;
  prefix?: string;
}

/** Starts the application, the scheduler role (no cron: ticks are driven) and the consumer. */
export async function startSubsHarness(opts: SubsHarnessOptions): Promise<SubsHarness> {
  const prefix = opts.prefix ?? uniquePrefix('subs');
  const config = await testConfig(prefix, {
    SAYSWITCH_BASE_URL: opts.sandboxUrl,
    DUNNING_SCHEDULE: '50ms,100ms,150ms',
    ...opts.env,
  });
  const clock = manualClock(opts.start);
  let real: SayswitchGateway | undefined;
  let gateway: PaymentGateway | undefined;
  if (opts.gateway) {
    real = new SayswitchGateway({
      baseUrl: opts.sandboxUrl,
      secretKey: TEST_SECRET_KEY,
      timeoutMs: config.sayswitch.timeoutMs,
    });
    gateway = opts.gateway(real);
  }
  const app = openApp(config, createLogger({ level: config.logLevel }), {
    clock,
    ...(gateway ? { gateway } : {}),
  });
  const running = await startRoles(app, ['worker', 'reconciler']);
  const scheduler = await startSubscriptionsScheduler(app, { cron: false, blockMs: 100 });
  const subs = app.subscriptions;
  const { subs: tickSubs, intents, dispatcher, logger, catchUpMaxPeriods } = subscriptionsDeps(app);
  const tickDeps: TickDeps = { subs: tickSubs, intents, dispatcher, logger, catchUpMaxPeriods };
  const stream = storeKeys(app.layout.group).events();

  const groupState = async () => {
    const groups = (await app.redis.call('XINFO', 'GROUPS', stream)) as unknown[][];
    for (const g of groups) {
      const f: Record<string, unknown> = {};
      for (let i = 0; i + 1 < g.length; i += 2) f[String(g[i])] = g[i + 1];
      if (f.name === SUBSCRIPTIONS_GROUP) return { lag: Number(f.lag), pending: Number(f.pending) };
    }
    return { lag: -1, pending: -1 };
  };
  const snapshot = async () => {
    const jobs = await app.dispatcher
      .queue('subscriptions')
      .getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    const group = await groupState();
    const states = await app.store.countByState();
    return { jobs, group, states };
  };
  const quiet = (s: Awaited<ReturnType<typeof snapshot>>) =>
    Object.values(s.jobs).every((n) => n === 0) &&
    s.group.lag === 0 &&
    s.group.pending === 0 &&
    s.states.queued + s.states.submitting + s.states.pending + s.states.unknown === 0;

  let open = true;
  const harness: SubsHarness = {
    prefix,
    clock,
    app,
    running,
    scheduler,
    service: subscriptionServiceDeps(app),
    subs,
    tickDeps,
    tick: (at) => runTick(tickDeps, at ?? clock.now()),
    async settle(timeoutMs = 20_000) {
      // Quiet twice in a row: a dunning job may fire between the reads of one snapshot.
      let streak = 0;
      await until(snapshot, {
        done: (s) => (streak = quiet(s) ? streak + 1 : 0) >= 2,
        what: 'no charge open, every outcome applied and no dunning job waiting',
        timeoutMs,
      });
    },
    async drained(timeoutMs = 10_000) {
      await until(groupState, {
        done: (g) => g.lag === 0 && g.pending === 0,
        what: 'the subscriptions consumer group drained',
        timeoutMs,
      });
    },
    async events() {
      return app.events.read('-', 1_000_000);
    },
    async close() {
      if (!open) return;
      open = false;
      await scheduler.stop();
      await running.stop(5_000);
      await cleanupPrefix(app.redis, prefix);
      await app.close();
      real?.close();
    },
  };
  track({ isOpen: () => open, close: () => harness.close() }, `subscription harness ${prefix}`);
  return harness;
}

/** Something a test opened and closes. */
export interface Closable {
  close(): Promise<void>;
}

/**
 * For a test file whose tests each open a sandbox and a harness (call it at the file's top
 * level): `setup(start, opts)` opens both on a manual clock at `start` (ISO), and everything in
 * `opened` (both, and whatever a test pushes) is closed after each test, newest first.
 */
export function subsPerTest(): {
  opened: Closable[];
  setup: (
    start: string,
    opts?: Omit<SubsHarnessOptions, 'sandboxUrl' | 'start'>,
  ) => Promise<{ sandbox: Sandbox; h: SubsHarness }>;
} {
  const opened: Closable[] = [];
  afterEach(async () => {
    for (const c of opened.reverse()) await c.close();
    opened.length = 0;
  });
  return {
    opened,
    setup: async (start, opts = {}) => {
      const sandbox = await startTestSandbox();
      opened.push(sandbox);
      const h = await startSubsHarness({
        sandboxUrl: sandbox.url,
        start: Date.parse(start),
        ...opts,
      });
      opened.push(h);
      return { sandbox, h };
    },
  };
}
