/**
 * `billing demo`: everything on embedded defaults. Finds or starts Redis, starts the sandbox
 * (encryption on, signed webhooks to the api role), runs every role in this process, seeds
 * sample work, shows progress, and prints a summary and the dashboard URL.
 *
 * The environment another shell needs to use the CLI against the running demo (Redis, the demo's
 * key prefix, the sandbox URL, the throwaway secrets and tokens) is printed and written to an env
 * file (`.env.demo` by default: `billing --env-file .env.demo batch status demo-payouts`). The
 * file is removed when the demo stops, since the demo then removes its keys too.
 */
import { scanEach } from '../infra/redis/scan.ts';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { isAbsolute } from 'node:path';
import type { App, RunningRoles } from '../app/composition.ts';
import { ROLES } from '../app/composition.ts';
import type { Config } from '../config/config.ts';
import { demoDefaults } from '../config/config.ts';
import { FINAL_STATES, INTENT_STATES, isSettled, type IntentState } from '../kernel/intent.ts';
import { formatMajor, type AmountMinor } from '../kernel/money.ts';
import type { Logger } from '../infra/logger.ts';
import { findOrStartRedis, type LocalRedis } from '../infra/redis/local-redis.ts';
import { redisAddress } from '../infra/redis/health.ts';
import { startSandbox, type Sandbox } from '../sandbox/index.ts';
import { formatEnvFile } from '../cli/env-file.ts';
import { CliError, describeFsError, EXIT_INTERRUPTED } from '../cli/errors.ts';

export interface DemoDeps {
  env: Record<string, string | undefined>;
  loadConfig: (overrides: Record<string, string>) => Config;
  logger: (config: Config) => Logger;
  openApp: (config: Config, logger: Logger) => App;
  startRoles: (app: App, roles: (typeof ROLES)[number][]) => Promise<RunningRoles>;
  untilSignal: () => Promise<NodeJS.Signals>;
  print: (line: string) => void;
  /** Rewrites the current terminal line (progress); plain lines when not a TTY. */
  progress: (line: string) => void;
  /** Seeders run once everything is up; each returns a short description of what it added. */
  seeders: ((app: App) => Promise<string>)[];
  /** Finds or starts the demo's Redis; default {@link findOrStartRedis} (tests pass their own). */
  findRedis?: (redisUrl: string | undefined) => Promise<LocalRedis>;
}

export interface DemoOptions {
  exitWhenDone: boolean;
  /** Give up waiting for final states after this long (the demo still prints its summary). */
  timeoutMs: number;
  /** Where to write the running demo's environment (`.env.demo`); undefined writes none. */
  envFile?: string;
}

/** Final counts and money of one state in one currency. */
export interface DemoTotal {
  count: number;
  /** Major units, e.g. `1500.50`. */
  amount: string;
}

/** What the demo did: the `--json` document of `billing demo`. */
export interface DemoReport {
  /** Every payment reached a final state. */
  done: boolean;
  /** Where Redis is, without the credentials of its URL. */
  redis: string;
  prefix: string;
  api: string;
  sandbox: string;
  /** The env file written while the demo ran (removed since), if any. */
  envFile?: string;
  /** Payments by state and currency. */
  summary: Record<string, Record<string, DemoTotal>>;
  ledger: { references: number; moneyMoved: number };
}

export interface DemoResult {
  exitCode: number;
  report: DemoReport;
}

/**
 * The demo's key prefix: its start time to the second, and 12 random hex digits (48 bits) so
 * that two demos started in the same second on one Redis (two shells, two CI tests) never share
 * keys — each deletes its own keys when it stops.
 */
export function demoPrefix(now: Date): string {
  return `demo-${now.toISOString().replace(/\D/g, '').slice(0, 14)}-${randomBytes(6).toString('hex')}`;
}

/** Demo variables that stay out of the env file: they belong to the demo's own process. */
const PROCESS_ONLY = new Set(['PORT', 'HOST', 'LOG_LEVEL']);

/** States still in flight (not settled): the demo waits until no payment is in one. */
const UNSETTLED: readonly IntentState[] = INTENT_STATES.filter((s) => !isSettled(s));

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function pickPort(preferred: number): Promise<number> {
  if (await portIsFree(preferred)) return preferred;
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** Sums of final intents per state and currency, for the summary. */
async function summarize(
  app: App,
): Promise<Map<string, Map<string, { count: number; amount: number }>>> {
  const out = new Map<string, Map<string, { count: number; amount: number }>>();
  for (const state of INTENT_STATES) {
    const keys = await app.store.keysInState(state, 100_000);
    for (const key of keys) {
      const intent = await app.store.get(key);
      if (!intent) continue;
      const byCurrency = out.get(state) ?? new Map<string, { count: number; amount: number }>();
      const row = byCurrency.get(intent.currency) ?? { count: 0, amount: 0 };
      row.count++;
      row.amount += intent.amount;
      byCurrency.set(intent.currency, row);
      out.set(state, byCurrency);
    }
  }
  return out;
}

/** Deletes every key of the demo's deployment: each key group's (shards, cluster hash tags). */
async function deleteDeployment(app: App): Promise<void> {
  for (const group of app.layout.shardPrefixes()) {
    await scanEach(app.redis, `${group}:*`, async (keys, node) => {
      await node.unlink(...keys);
    });
  }
}

/** Writes the env file; says why not when it cannot. */
async function writeDemoEnv(
  path: string,
  vars: Record<string, string>,
  print: (line: string) => void,
): Promise<boolean> {
  const text = formatEnvFile(vars, [
    `Written by \`billing demo\` (pid ${process.pid}) at ${new Date().toISOString()}: the environment`,
    'of the running demo. Valid while it runs; it is removed when the demo stops.',
    `  npx billing --env-file ${path} batch status demo-payouts`,
    `  set -a; . ${isAbsolute(path) ? path : `./${path.replace(/^\.\//, '')}`}; set +a    # or load it into a shell`,
  ]);
  try {
    await writeFile(path, text, { mode: 0o600 });
    return true;
  } catch (err) {
    print(`(could not write ${path}: ${describeFsError(err)}; export the variables above instead)`);
    return false;
  }
}

/**
 * Runs the demo; resolves with the exit code and what it did.
 *
 * SIGINT/SIGTERM are listened for before anything starts (as `billing start` and `billing
 * sandbox` do): a signal during start-up ends it at the next step, instead of killing the
 * process with the demo's keys, its env file and a spawned redis-server left behind, and rejects
 * with an `interrupted` error (exit 130) once everything is cleaned up. What was started is
 * cleaned up whatever fails after it started: each clean-up runs only for what was started.
 */
export async function runDemo(deps: DemoDeps, opts: DemoOptions): Promise<DemoResult> {
  let interrupted = false;
  const signal = deps.untilSignal().then(() => {
    interrupted = true;
    return 'signal' as const;
  });
  /** Ends a start-up interrupted by a signal (the `finally` below cleans up). */
  const unlessInterrupted = () => {
    if (interrupted) {
      throw new CliError(
        'interrupted while the demo was starting; it removed what it had started',
        {
          code: 'interrupted',
          exitCode: EXIT_INTERRUPTED,
        },
      );
    }
  };
  let redis: LocalRedis | undefined;
  let sandbox: Sandbox | undefined;
  let app: App | undefined;
  let running: RunningRoles | undefined;
  let envWritten = false;
  try {
    redis = await (deps.findRedis ?? findOrStartRedis)(deps.env.REDIS_URL);
    unlessInterrupted();
    const port = await pickPort(Number(deps.env.PORT ?? 3000) || 3000);
    const defaults = demoDefaults();
    const encryption = {
      key: defaults.SAYSWITCH_ENCRYPTION_KEY ?? '',
      iv: defaults.SAYSWITCH_ENCRYPTION_IV ?? '',
      encoding: 'hex' as const,
    };
    sandbox = await startSandbox({
      port: 0,
      secretKey: defaults.SAYSWITCH_SECRET_KEY ?? '',
      encryption,
      settleMs: 3_000,
      hangMs: 8_000,
      faultRate: 0.05,
      seed: 42,
      webhookUrl: `http://127.0.0.1:${port}/webhooks/sayswitch`,
    });
    unlessInterrupted();
    const prefix = demoPrefix(new Date());
    const overrides: Record<string, string> = {
      ...defaults,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: prefix,
      SAYSWITCH_BASE_URL: sandbox.url,
      SAYSWITCH_TIMEOUT_MS: '3000',
      RECONCILE_SCHEDULE: '2s,4s,8s,15s,30s',
      RECONCILE_NOT_FOUND_GRACE: '3s',
      PAYOUT_WATCH_SCHEDULE: '5s,10s',
      RECONCILE_CRON: '*/5 * * * * *',
      SCHEDULER_CRON: '*/10 * * * * *',
      ORPHAN_AFTER: '30s',
      DUNNING_SCHEDULE: '5s,10s',
      PORT: String(port),
      HOST: '127.0.0.1',
      // Progress lines are the demo's output; LOG_LEVEL=info shows the JSON log beside them.
      LOG_LEVEL: deps.env.LOG_LEVEL ?? 'error',
    };
    const config = deps.loadConfig(overrides);
    /** What another shell needs for the CLI against this demo. */
    const continueEnv = Object.fromEntries(
      Object.entries(overrides).filter(([k]) => !PROCESS_ONLY.has(k)),
    );
    const logger = deps.logger(config);
    app = deps.openApp(config, logger);
    // The address without credentials: a REDIS_URL's password only goes into the environment
    // block below (the variables another shell needs) and the env file (mode 0600).
    deps.print(`Redis: ${redisAddress(redis.url)} (${redis.source}); key prefix ${prefix}`);
    deps.print(
      `Sayswitch sandbox: ${sandbox.url} (AES-256-CBC payload encryption on, 5% injected faults)`,
    );
    running = await deps.startRoles(app, [...ROLES]);
    unlessInterrupted();
    deps.print(`API: http://127.0.0.1:${port}  (roles: ${ROLES.join(', ')})`);
    deps.print(
      `Tokens: Authorization: Bearer ${config.http.apiToken} (API_TOKEN, read and write), ` +
        `Bearer ${config.http.apiReadToken ?? '(unset)'} (API_READ_TOKEN, reads only)`,
    );
    deps.print(
      `Dashboard: http://127.0.0.1:${port}/admin/queues  (user ${config.http.dashboard?.user ?? '(none)'}, password ${config.http.dashboard?.password ?? '(none)'})`,
    );
    deps.print(
      `Console: http://127.0.0.1:${port}/console  (the same user and password; payments, review inbox, batches, subscriptions)`,
    );
    deps.print(
      `Metrics: curl -H 'Authorization: Bearer ${config.http.apiReadToken ?? config.http.apiToken}' http://127.0.0.1:${port}/metrics`,
    );
    deps.print(
      `Environment of this demo, for the CLI in another shell while it runs${opts.envFile ? ` (written to ${opts.envFile})` : ''}:`,
    );
    for (const line of formatEnvFile(continueEnv).trimEnd().split('\n')) deps.print(`  ${line}`);
    if (opts.envFile !== undefined) {
      envWritten = await writeDemoEnv(opts.envFile, continueEnv, deps.print);
    }
    for (const seed of deps.seeders) {
      unlessInterrupted();
      deps.print(`Seeded ${await seed(app)}`);
    }
    unlessInterrupted();
    const cli = envWritten ? `npx billing --env-file ${opts.envFile ?? ''}` : 'npx billing';
    deps.print('Try, in another shell while the demo runs:');
    deps.print(`  ${cli} batch status demo-payouts`);
    deps.print(`  ${cli} payments show api_demo-charge-1`);
    deps.print(
      `  curl -s -H 'Authorization: Bearer ${config.http.apiToken}' http://127.0.0.1:${port}/payments/api_demo-charge-1`,
    );

    const deadline = Date.now() + opts.timeoutMs;
    let done = false;
    while (!done) {
      const counts = await app.store.countByState();
      const line = INTENT_STATES.filter((s) => counts[s] > 0)
        .map((s) => `${s} ${counts[s]}`)
        .join(' · ');
      deps.progress(`payments: ${line || 'none yet'}`);
      done = UNSETTLED.every((s) => counts[s] === 0) && FINAL_STATES.some((s) => counts[s] > 0);
      if (done || Date.now() > deadline) break;
      const r = await Promise.race([
        signal,
        new Promise((r2) => setTimeout(() => r2('tick'), 1_000)),
      ]);
      if (r === 'signal') break;
    }
    deps.print('');
    deps.print(
      done
        ? 'Every payment reached a final state:'
        : 'Summary so far (some payments are still in flight):',
    );
    const summary = await summarize(app);
    const report: DemoReport['summary'] = {};
    for (const [state, byCurrency] of summary) {
      const parts = [...byCurrency].map(
        ([cur, v]) => `${v.count} × ${cur} ${formatMajor(v.amount as AmountMinor)}`,
      );
      deps.print(`  ${state.padEnd(12)} ${parts.join(', ')}`);
      report[state] = Object.fromEntries(
        [...byCurrency].map(([cur, v]) => [
          cur,
          { count: v.count, amount: formatMajor(v.amount as AmountMinor) },
        ]),
      );
    }
    const ledger = sandbox.ledger();
    const references = Object.keys(ledger.references).length;
    const moneyMoved = Object.values(ledger.references).filter((e) => e.moneyMoved).length;
    deps.print(`Sandbox ledger: ${references} references, money moved for ${moneyMoved}`);
    if (!opts.exitWhenDone) {
      deps.print('Running until Ctrl-C (the dashboard stays up).');
      await signal;
    }
    return {
      exitCode: done ? 0 : 1,
      report: {
        done,
        redis: redisAddress(redis.url),
        prefix,
        api: `http://127.0.0.1:${port}`,
        sandbox: sandbox.url,
        ...(envWritten && opts.envFile !== undefined ? { envFile: opts.envFile } : {}),
        summary: report,
        ledger: { references, moneyMoved },
      },
    };
  } finally {
    // Each step runs for what was started, and a failing one does not skip the others.
    const cleanUp = async (what: string, step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (err) {
        deps.print(`(could not ${what}: ${err instanceof Error ? err.message : String(err)})`);
      }
    };
    const [envFile, roles, opened, server, db] = [opts.envFile, running, app, sandbox, redis];
    if (envWritten && envFile !== undefined) {
      await cleanUp(`remove ${envFile}`, () => rm(envFile, { force: true }));
    }
    if (roles) await cleanUp('stop the roles', () => roles.stop(5_000));
    if (opened) {
      // A demo leaves nothing behind in a Redis it did not start.
      if (db?.source !== 'spawned') {
        await cleanUp("delete the demo's keys", () => deleteDeployment(opened));
      }
      await cleanUp('close the Redis connections', () => opened.close());
    }
    if (server) await cleanUp('stop the sandbox', () => server.close());
    if (db) await cleanUp('stop the demo Redis', () => db.stop());
  }
}
