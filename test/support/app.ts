/**
 * Builds the real application for integration tests: configuration through loadConfig (the same
 * path as production), the composition root's adapters, and the requested roles, on the harness
 * Redis with a unique prefix and a real sandbox.
 */
import { loadConfig, type Config } from '../../src/config/config.ts';
import {
  openApp,
  startRoles,
  type App,
  type Role,
  type RunningRoles,
} from '../../src/app/composition.ts';
import type { Clock } from '../../src/kernel/clock.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { cleanupPrefix, getRedisUrl, uniquePrefix } from './redis.ts';
import { track } from './leak-check.ts';
import { afterAll, beforeAll } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestSandbox, TEST_SECRET_KEY } from './sandbox.ts';

export const TEST_API_TOKEN = 'test-api-token-0123456789';

/** Fast schedules so reconcile paths finish in seconds; every value can be overridden. */
export const FAST_ENV: Record<string, string> = {
  SAYSWITCH_SECRET_KEY: TEST_SECRET_KEY,
  DATA_ENCRYPTION_KEY: '11'.repeat(32),
  API_TOKEN: TEST_API_TOKEN,
  SAYSWITCH_TIMEOUT_MS: '500',
  SAYSWITCH_RATE_LIMIT_PER_SEC: '2000',
  WORKER_CONCURRENCY: '16',
  RECONCILE_SCHEDULE: '100ms,200ms,300ms,400ms,600ms,800ms,1s,2s',
  RECONCILE_NOT_FOUND_GRACE: '200ms',
  PAYOUT_WATCH_SCHEDULE: '300ms,600ms',
  SUBMIT_LEASE: '2s',
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  PORT: '0',
  HOST: '127.0.0.1',
  // Every answer is checked against the API document: a test fails on an undocumented one.
  HTTP_CHECK_RESPONSES: 'true',
};

export async function testConfig(
  prefix: string,
  env: Record<string, string> = {},
): Promise<Config> {
  return loadConfig({ ...FAST_ENV, REDIS_URL: await getRedisUrl(), QUEUE_PREFIX: prefix, ...env });
}

export interface TestApp {
  prefix: string;
  app: App;
  running: RunningRoles;
  /** Base URL of the api role, when started. */
  url?: string;
  /** Stops the roles and closes the app; deletes the prefix's keys unless `keepData`. */
  close(opts?: { keepData?: boolean }): Promise<void>;
}

/** Opens the app against `sandboxUrl` and starts `roles`. Close it in afterEach/afterAll. */
export async function startTestApp(opts: {
  sandboxUrl: string;
  roles: Role[];
  env?: Record<string, string>;
  clock?: Clock;
  prefix?: string;
  /** Where log lines go (tests that assert on logs); stdout otherwise. */
  logDestination?: { write(line: string): void };
}): Promise<TestApp> {
  const prefix = opts.prefix ?? uniquePrefix('app');
  const config = await testConfig(prefix, { SAYSWITCH_BASE_URL: opts.sandboxUrl, ...opts.env });
  const logger = createLogger({
    level: config.logLevel,
    ...(opts.logDestination ? { destination: opts.logDestination } : {}),
  });
  const app = openApp(config, logger, opts.clock ? { clock: opts.clock } : {});
  const running = await startRoles(app, opts.roles);
  const address = running.http?.server.address();
  let open = true;
  const handle: TestApp = {
    prefix,
    app,
    running,
    ...(address && typeof address === 'object' ? { url: `http://127.0.0.1:${address.port}` } : {}),
    async close(closeOpts = {}) {
      if (!open) return;
      open = false;
      await running.stop(5_000);
      if (!closeOpts.keepData) await cleanupPrefix(app.redis, prefix);
      await app.close();
    },
  };
  track({ isOpen: () => open, close: () => handle.close() }, `test app ${prefix}`);
  return handle;
}

/**
 * A sandbox and an app with no roles, opened before the file's tests and closed after them: for
 * tests that run the handlers, stores and sweeps themselves (nothing else claims or checks).
 * Registers the file's beforeAll/afterAll; read `env.t` and `env.sandbox` inside tests.
 */
export function appWithoutRoles(): { readonly t: TestApp; readonly sandbox: Sandbox } {
  let t: TestApp | undefined;
  let sandbox: Sandbox | undefined;
  beforeAll(async () => {
    sandbox = await startTestSandbox();
    t = await startTestApp({ sandboxUrl: sandbox.url, roles: [] });
  });
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });
  const opened = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('appWithoutRoles() is read inside tests only');
    return v;
  };
  return {
    get t() {
      return opened(t);
    },
    get sandbox() {
      return opened(sandbox);
    },
  };
}

/** What `createPayment` needs, from an open app (the API's own wiring, without HTTP). */
export { createPaymentDeps as createDeps } from '../../src/payments/create.ts';
