/**
 * What every service process does about Redis on its own, besides its roles: every few seconds
 * and whenever Redis comes back, it checks the deployment epoch (infra/redis/epoch.ts: a data loss
 * raises `alert.redis_data_lost`, counts in `billing_redis_data_loss_total` and keeps /readyz at
 * 503 until acknowledged) and re-creates any job scheduler Redis no longer has (the sweep, the
 * subscription tick), so billing and reconciliation resume without a restart.
 */
import type { Clock } from '../kernel/clock.ts';
import type { BillingEvent } from '../kernel/events.ts';
import type { EventLog } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { QueueDispatcher } from '../infra/queues/dispatcher.ts';
import type { DeploymentEpoch } from '../infra/redis/epoch.ts';
import type { RedisHealth } from '../infra/redis/health.ts';
import type { Metrics } from '../http/metrics.ts';

/** What the watch needs of the application (the composition root's `App` fits). */
export interface PlatformApp {
  config: { redis: { prefix: string } };
  logger: Logger;
  clock: Clock;
  health: RedisHealth;
  epoch: DeploymentEpoch;
  events: EventLog;
  dispatcher: QueueDispatcher;
  metrics: Metrics;
  /**
   * Records the shard count again if the group lost it (infra/redis/shards.ts
   * `restoreShardCount`); run after every epoch check.
   */
  restoreShardCount?: () => Promise<void>;
}

/** How often the epoch and the schedulers are checked. */
export const PLATFORM_CHECK_MS = 5_000;

/** How long the data-loss alert's id is remembered, so a resent append publishes it once. */
const ALERT_ONCE_TTL_S = 86_400;

export interface PlatformWatch {
  /** One check now (also what the timer runs). */
  check(): Promise<void>;
  stop(): void;
}

export function startPlatformWatch(
  app: PlatformApp,
  intervalMs = PLATFORM_CHECK_MS,
  lostAtStart?: string,
): PlatformWatch {
  const log = app.logger.child({ component: 'platform' });
  let running: Promise<void> | undefined;
  let failing = false;
  // The data-loss alert until it is published: the loss is detected once (the next check finds
  // the new epoch its own), so an alert whose append failed is sent again by the next check.
  // Every process that sees the loss sends it, once per lost epoch id between them.
  let unsentAlert: BillingEvent | undefined;

  const once = async () => {
    if (!app.health.isUp()) return;
    try {
      const now = app.clock.now();
      const seen = await app.epoch.check(now);
      if (seen.verdict === 'detected') {
        app.metrics.countDataLoss();
        log.error(
          { redis: app.health.address, lostEpoch: seen.lostId, epoch: seen.id },
          'REDIS DATA LOSS: the deployment epoch is gone or replaced; payments accepted before ' +
            'it may be missing. /readyz answers 503 until `billing redis ack-data-loss` ' +
            '(docs/operations.md, "Redis lost its data")',
        );
        unsentAlert = dataLostAlert(seen.lostId, seen.id, now);
      } else if (seen.verdict === 'adopt' && seen.lost) {
        app.metrics.countDataLoss();
        log.error(
          { redis: app.health.address, epoch: seen.id },
          'REDIS DATA LOSS recorded by another process; /readyz answers 503 until acknowledged',
        );
        // The same alert, once per lost epoch whoever sends it (appendOnce): sent here too in
        // case the process that detected the loss died before it could.
        const lostId = (await app.epoch.read())?.lostId;
        if (lostId !== undefined) unsentAlert = dataLostAlert(lostId, seen.id, now);
      }
      // A group that lost its data lost its shard count too: recorded again (this process's
      // count was checked when it started), so that a restart is not refused.
      await app.restoreShardCount?.();
      if (unsentAlert) {
        // Once per id: an append whose reply was lost may have written it already.
        await app.events.appendOnce(unsentAlert, ALERT_ONCE_TTL_S);
        unsentAlert = undefined;
      }
      const recreated = await app.dispatcher.ensureSchedules();
      if (recreated.length > 0) log.warn({ schedulers: recreated }, 'job schedulers re-created');
      if (failing) log.info('platform checks recovered');
      failing = false;
    } catch (err) {
      if (!failing) {
        log.warn({ err: { message: (err as Error).message } }, 'platform check failed; retrying');
      }
      failing = true;
    }
  };
  const check = () => (running ??= once().finally(() => (running = undefined)));

  function dataLostAlert(lostId: string, epoch: string, now: number): BillingEvent {
    return {
      id: `alert.redis_data_lost-${lostId}`,
      type: 'alert.redis_data_lost',
      at: now,
      data: {
        lostEpoch: lostId,
        epoch,
        redis: app.health.address,
        prefix: app.config.redis.prefix,
      },
    };
  }

  // The process started on an unacknowledged loss (`lostAtStart`: the lost epoch's id), which
  // its own opening may have detected (a group that lost its data while nothing ran) or a CLI
  // command's: the alert goes out from here too, once per lost epoch whoever sends it.
  if (lostAtStart !== undefined) {
    unsentAlert = dataLostAlert(lostAtStart, app.epoch.current() ?? '', app.clock.now());
    void check();
  }
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  const off = app.health.onChange((up) => {
    if (up) void check();
  });
  return {
    check,
    stop() {
      clearInterval(timer);
      off();
    },
  };
}
