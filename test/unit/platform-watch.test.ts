/**
 * The platform watch (src/app/platform-watch.ts) checks the deployment epoch whenever Redis comes
 * back, not only on its timer: a data loss during an outage is found (alert, metric) the moment
 * the connection returns. Fakes for the ports; the timer is an hour, so only the reconnect can
 * run the check here.
 */
import { describe, expect, it } from 'vitest';
import { startPlatformWatch, type PlatformApp } from '../../src/app/platform-watch.ts';
import { createLogger } from '../../src/infra/logger.ts';
import type { BillingEvent } from '../../src/kernel/events.ts';

function fakeApp() {
  const listeners: ((up: boolean) => void)[] = [];
  const appended: BillingEvent[] = [];
  let lossCount = 0;
  let checks = 0;
  const app = {
    config: { redis: { prefix: 'pw' } },
    logger: createLogger({ level: 'silent' }),
    clock: { now: () => 1_000 },
    health: {
      address: 'redis://127.0.0.1:6379',
      isUp: () => true,
      onChange: (fn: (up: boolean) => void) => {
        listeners.push(fn);
        return () => listeners.splice(listeners.indexOf(fn), 1);
      },
    },
    epoch: {
      check: () => {
        checks += 1;
        return Promise.resolve({ verdict: 'detected', lostId: 'ep-old', id: 'ep-new' });
      },
      read: () => Promise.resolve(undefined),
    },
    events: {
      appendOnce: (e: BillingEvent) => {
        appended.push(e);
        return Promise.resolve();
      },
    },
    dispatcher: { ensureSchedules: () => Promise.resolve([]) },
    metrics: { countDataLoss: () => (lossCount += 1) },
  } as unknown as PlatformApp;
  return {
    app,
    appended,
    get checks() {
      return checks;
    },
    get lossCount() {
      return lossCount;
    },
    redisComesBack: () => listeners.forEach((fn) => fn(true)),
    redisGoesDown: () => listeners.forEach((fn) => fn(false)),
  };
}

describe('platform watch', () => {
  it('checks the epoch when Redis comes back, and raises the data-loss alert then', async () => {
    const f = fakeApp();
    const watch = startPlatformWatch(f.app, 3_600_000);
    try {
      f.redisGoesDown();
      expect(f.checks).toBe(0);
      f.redisComesBack();
      // The fakes answer at once: the whole check is microtasks, done before the next macrotask.
      await new Promise((r) => setImmediate(r));
      expect(f.checks).toBe(1);
      expect(f.lossCount).toBe(1);
      expect(f.appended).toEqual([
        expect.objectContaining({
          id: 'alert.redis_data_lost-ep-old',
          type: 'alert.redis_data_lost',
          data: expect.objectContaining({ lostEpoch: 'ep-old', epoch: 'ep-new', prefix: 'pw' }),
        }),
      ]);
    } finally {
      watch.stop();
    }
  });

  it('stops listening when stopped', async () => {
    const f = fakeApp();
    startPlatformWatch(f.app, 3_600_000).stop();
    f.redisComesBack();
    await new Promise((r) => setImmediate(r));
    expect(f.checks).toBe(0);
  });
});
