/**
 * The chaos matrix harness (docs/operations.md, "Chaos matrix"): runs one cell — one sandbox
 * profile × injected faults × a worker process SIGKILLed again and again — and checks exactly-once
 * against the sandbox ledger. Shared by test/integration/chaos.test.ts (CI size) and
 * bench/chaos.ts (`npm run chaos`, 10,000 payments per cell).
 *
 * One cell:
 * - a sandbox with the profile, `timeScale` (lags and 3-D Secure expiries short), `faultRate` and
 *   `seed`, webhooks pointed at the child's api role;
 * - `billing start --roles worker,reconciler,api` in a child process (bin/billing.js, as an
 *   operator runs it), SIGKILLed `kills` times while payments run, then started once more to drain;
 * - this process is the "rest of the deployment": it creates the payments (charges and payouts
 *   alternately, amounts spread over the sandbox outcome table), upserts the reconcile sweep's job
 *   scheduler, and runs the subscriptions module's scheduler role (dunning worker and outcome
 *   consumer) on a clock it jumps a day per renewal round, ticking with `runTick` like
 *   test/support/subscription-harness.ts. That clock is the real one plus whole days, so dunning
 *   delays (DUNNING_SCHEDULE, short) pass in real time while period keys move a day per round;
 * - under the `3ds2` card flow it plays the payers: each challenge seen in the ledger is completed,
 *   failed or abandoned through `sandbox.authenticate`, or left to expire (seeded, per reference);
 * - then it drives everything to a settled state (every intent final or needs_review, the ledger
 *   with nothing pending, the subscriptions quiet, all of it unchanged over a few polls), running
 *   `billing reconcile --older-than 2s`'s sweep now and then, stops the child with SIGTERM and
 *   checks intents against the ledger (see {@link CHECKS}).
 *
 * Waits use `until` (test/support/poll.ts); the harness never asserts on time. What it measures
 * (durations) is reported, not checked.
 */
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  openApp,
  paymentsDeps,
  startContribution,
  subscriptionsDeps,
  sweepDeps,
  type App,
} from '../../src/app/composition.ts';
import { loadConfig } from '../../src/config/config.ts';
import { systemClock, type Clock } from '../../src/kernel/clock.ts';
import { parseAttemptReference } from '../../src/kernel/ids.ts';
import { INTENT_STATES, type IntentState } from '../../src/kernel/intent.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { createPayment } from '../../src/payments/create.ts';
import { paymentsModule } from '../../src/payments/module.ts';
import { runSweep } from '../../src/payments/sweep.ts';
import {
  startSandbox,
  type Ledger,
  type ProfileName,
  type SandboxOptionsInput,
  type ThreeDsAction,
} from '../../src/sandbox/index.ts';
import { SUBSCRIPTIONS_GROUP } from '../../src/subscriptions/outcome-consumer.ts';
import {
  createSubscriptionFromBody,
  subscriptionServiceDeps,
} from '../../src/subscriptions/service.ts';
import { runTick, type TickDeps } from '../../src/subscriptions/tick.ts';
import { FAST_ENV } from './app.ts';
import { spawnBilling, type BillingChild } from './child.ts';
import { until } from './poll.ts';
import { cleanupPrefix, getRedisUrl, uniquePrefix } from './redis.ts';
import { startSubscriptionsScheduler, type RunningScheduler } from './subscription-harness.ts';

const DAY = 86_400_000;
/**
 * Not yet final nor needs_review. `requires_action` too: under the extended status words an
 * abandoned challenge says `abandoned`, a word the adapter reads as pending, so its payment waits
 * out REQUIRES_ACTION_WINDOW (then pending, then needs_review) and the drain must wait with it.
 */
const UNSETTLED: readonly IntentState[] = [
  'queued',
  'submitting',
  'requires_action',
  'pending',
  'unknown',
];
const CHILD_ROLES = 'worker,reconciler,api';

/**
 * How long a paused worker stays stopped: past its SUBMIT_LEASE (1.5 s here) and the not-found
 * grace, so the sweep expires its claims and a stand-in may re-claim them before it wakes up.
 */
const PAUSE_MS = 4_000;

export interface ChaosCellOptions {
  profile: ProfileName;
  /** API payments (charges and payouts alternately). */
  payments: number;
  /** Daily subscriptions (default 6: two that pay, pending-then-paid, declining, pending-then-declined, moved-then-500). */
  subscriptions?: number;
  /** Renewal rounds after the first period (default 3). */
  renewals?: number;
  /** SIGKILLs of the worker process while payments run (default 5). */
  kills?: number;
  /**
   * Of the kills, how many first pause the worker past its lease (default 0): SIGSTOP while a
   * claim is out, a stand-in worker takes over for {@link PAUSE_MS}, then SIGCONT, one second
   * awake with stale claims, and SIGKILL (the stand-in too). It plays a worker that outlives its
   * lease without dying (a long GC, a stopped VM), whose late answers the lease fence refuses.
   */
  pauses?: number;
  /** Seeds the sandbox's fault injection, the amounts and the payers' choices (default 7). */
  seed?: number;
  /** Default 0.2. */
  faultRate?: number;
  /** Multiplies the profile's lookup lag and 3-D Secure expiry (default: {@link DEFAULT_TIME_SCALE}). */
  timeScale?: number;
  /** A life of the worker process ends after this long even if it made little progress (default 15 s). */
  lifeCapMs?: number;
  /**
   * How long the drain may take before the cell is reported as it stands (default 300 s). A cap,
   * not the measure: the drain ends as soon as everything is settled, or when nothing changed for
   * `stallMs`; a machine under heavy load only makes progress slower, which is not a failure.
   */
  settleTimeoutMs?: number;
  /** The drain also ends when nothing changed (intents, ledger) for this long (default 30 s). */
  stallMs?: number;
  /**
   * The product's RECONCILE_NOT_FOUND_GRACE (default 200 ms, the integration tests' FAST_ENV):
   * not scaled with the sandbox, so a profile's lag can outlast it (hostile's 60 s × 0.01).
   */
  notFoundGraceMs?: number;
  /**
   * Sandbox options over the profile's (e.g. `{ lookupLagMs: 60_000 }` to give laravel-unique a
   * lag): for exploring a variant of a profile. Durations are scaled by `timeScale` too.
   */
  sandbox?: Partial<SandboxOptionsInput>;
  /**
   * The AES-256-CBC payload encoding both sides use, or `off` (default: the profile's,
   * {@link CELL_ENCRYPTION}).
   */
  encryption?: CellEncryption;
  /** Progress lines; silent when omitted. */
  log?: (line: string) => void;
  /** The child's LOG_LEVEL (default `warn`: its output tail goes into the report). */
  childLogLevel?: string;
}

/** One check: `count` must be 0. */
export interface ChaosCheck {
  name: CheckName;
  count: number;
  /** A few offenders with what the ledger says about them. */
  examples: string[];
}

export const CHECKS = {
  reference_moved_twice: 'a reference whose money moved more than once (ledger activity moves > 1)',
  payment_moved_twice: 'an API payment with money moved under two of its references',
  period_charged_twice:
    'a subscription period (sub_<id>_<yyyymmdd>) with two references that moved money',
  failed_but_moved: 'an intent `failed` while the ledger says one of its references moved money',
  unsettled: 'an intent neither final (succeeded/failed/reversed) nor needs_review, or missing',
  succeeded_mismatch:
    'an intent `succeeded` without exactly one moved reference (its current one) still holding the money',
  reversed_mismatch:
    'an intent `reversed` whose reference the ledger does not show moved and reversed',
  moved_not_succeeded:
    'a reference that moved money whose intent is not succeeded, reversed or needs_review',
  not_quiet:
    'the drain gave up (timeout, or no change for `stallMs`) before intents were settled, nothing was pending at the gateway and no reconcile check was waiting',
  subscriptions_stalled:
    'a renewal round whose charges, outcomes and dunning retries had not gone quiet when the drain ended (that round and the ones after it)',
  child_crashed: 'the worker process exited on its own (not killed by the harness)',
  unclean_shutdown: 'the last worker process did not exit with code 0 on SIGTERM',
} as const;
export type CheckName = keyof typeof CHECKS;

export interface StateCounts {
  total: number;
  succeeded: number;
  failed: number;
  reversed: number;
  needs_review: number;
  unsettled: number;
}

export interface ChaosCellResult {
  profile: ProfileName;
  /** The profile, and the sandbox options set over it (`default duplicateReference=400-opaque`). */
  cell: string;
  /** Submissions the sandbox answered by its duplicate-reference rule (resubmissions met it). */
  duplicates: number;
  seed: number;
  timeScale: number;
  /** API payments asked for. */
  payments: number;
  api: StateCounts;
  /** Subscription charges (one intent per billed period). */
  subs: StateCounts & {
    subscriptions: number;
    /** Subscriptions by status at the end (active, past_due, canceled, …). */
    statuses: Record<string, number>;
    /** Renewal rounds not run or not quiet when the drain ended. */
    stalledRounds: number;
  };
  /** References whose money moved (ledger activity moves > 0). */
  movedReferences: number;
  /** Of those, references of needs_review intents (reported, not a failure). */
  movedNeedsReview: number;
  /** needs_review intents by the amount's cents, and a few of them with their ledger lines. */
  needsReviewByCents: Record<string, number>;
  needsReviewExamples: string[];
  /** 3-D Secure challenges by how they ended (the ledger's `authentication`). */
  threeDs: Record<string, number>;
  kills: number;
  /** Of the kills, how many paused the worker past its lease first. */
  pauses: number;
  /** Intents whose claim a kill orphaned (history `lease_expired`) / that went `unknown`. */
  leaseExpired: number;
  wentUnknown: number;
  /** Whether the drain reached the settled state before its timeout. */
  settled: boolean;
  durationMs: number;
  /** From the first child until the last kill; then the drain. */
  runMs: number;
  drainMs: number;
  checks: ChaosCheck[];
  ok: boolean;
  /** The last child's output tail when a check failed (for the report). */
  childOutput?: string;
}

/** Checks of a result that found something. */
export function failedChecks(r: ChaosCellResult): ChaosCheck[] {
  return r.checks.filter((c) => c.count > 0);
}

// ---------------------------------------------------------------------------------------------
// Deterministic choices

/** A number in [0, 1) from integers (a small avalanche hash). */
function unit(i: number, seed: number, salt: number): number {
  let x = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(seed + salt * 0x27d4eb2f, 0xc2b2ae35);
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return (x >>> 0) / 2 ** 32;
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The sandbox outcome table (docs/sayswitch-wire.md, "Sandbox outcomes") by weight: plain
 * successes, 51 decline, 52/53 pending then success/failure, 54/55 money moved then an error or a
 * held answer, 56 nothing recorded, 57 a 429 first, 58 a payout reversed (a charge succeeds).
 */
const OUTCOME_WEIGHTS: readonly (readonly [cents: number | 'plain', weight: number])[] = [
  ['plain', 46],
  [51, 8],
  [52, 7],
  [53, 7],
  [54, 6],
  [55, 5],
  [56, 6],
  [57, 7],
  [58, 8],
];

/** The amount of payment `i`: major units 100–9,099, cents chosen by the outcome table. */
export function chaosAmount(i: number, seed: number): string {
  let pick = unit(i, seed, 1) * 100;
  let cents: number | 'plain' = 'plain';
  for (const [c, w] of OUTCOME_WEIGHTS) {
    if (pick < w) {
      cents = c;
      break;
    }
    pick -= w;
  }
  if (cents === 'plain') {
    // 00–50 and 59–99: no special behaviour.
    cents = Math.floor(unit(i, seed, 3) * 92);
    if (cents >= 51) cents += 8;
  }
  const major = 100 + Math.floor(unit(i, seed, 2) * 9_000);
  return `${major}.${String(cents).padStart(2, '0')}`;
}

export function chaosPaymentBody(i: number, seed: number): Record<string, unknown> {
  const amount = chaosAmount(i, seed);
  return i % 2 === 0
    ? {
        type: 'charge',
        key: `chaos${i}`,
        email: 'chaos@example.com',
        amount,
        currency: 'NGN',
        card_token: 'tok_chaos_0123456789',
      }
    : {
        type: 'payout',
        key: `chaos${i}`,
        account_number: '0123456789',
        bank_code: '000013',
        bank_name: 'GTBank',
        account_name: 'Chaos Test',
        amount,
        currency: 'NGN',
        narration: 'chaos matrix',
      };
}

/** What a payer does with a 3-D Secure challenge: seeded per reference. */
export function payerAction(reference: string, seed: number): ThreeDsAction | 'expire' {
  const u = unit(hashString(reference), seed, 11);
  return u < 0.45 ? 'complete' : u < 0.6 ? 'fail' : u < 0.75 ? 'abandon' : 'expire';
}

/** Daily subscriptions, cycling through these cards. */
const SUB_PLANS = [
  { kind: 'pays', amount: '1500.00' },
  { kind: 'pays', amount: '2499.37' },
  { kind: 'pending-then-pays', amount: '1200.52' },
  { kind: 'declines', amount: '900.51' },
  { kind: 'pending-then-declines', amount: '750.53' },
  { kind: 'moved-then-500', amount: '3100.54' },
] as const;

/**
 * Each profile's `timeScale`: lags become about half a second — longer than the product's first
 * reconcile check and not-found grace (200 ms), so a lookup really can miss a recorded reference —
 * and 3-D Secure challenges expire after 6 s (hostile: 60 s lag → 600 ms, 10 min expiry → 6 s;
 * idempotent-replay: 5 s lag → 500 ms). At 0.01 throughout, idempotent-replay's lag would be
 * 50 ms, over before any lookup, and the cell would be the default one again.
 */
export const DEFAULT_TIME_SCALE: Readonly<Record<ProfileName, number>> = {
  default: 0.01,
  'strict-docs': 0.01,
  hostile: 0.01,
  'laravel-unique': 0.01,
  'idempotent-replay': 0.1,
};

/** A cell's payload encryption: the encoding both sides use, or none. */
export type CellEncryption = 'hex' | 'base64' | 'off';

/**
 * Each profile's payload encryption (docs/sayswitch-api.md §7.1: whether Sayswitch encodes the
 * AES-256-CBC payload as hex or base64 is unknown, and a deployment turns it on with
 * SAYSWITCH_ENCRYPTION_KEY/IV). Both encodings run under the profiles whose answers are the
 * hardest to read; `default` stays off, the path every earlier cell measured.
 */
export const CELL_ENCRYPTION: Readonly<Record<ProfileName, CellEncryption>> = {
  default: 'off',
  'strict-docs': 'hex',
  hostile: 'base64',
  'laravel-unique': 'hex',
  'idempotent-replay': 'base64',
};

/** The cell's encryption secrets (32-byte key, 16-byte IV, as Sayswitch issues them). */
const CHAOS_ENCRYPTION = { key: 'chaos-encryption-key-32-bytes-ok', iv: 'chaos-iv-16bytes' };

// ---------------------------------------------------------------------------------------------
// The cell

interface JumpClock extends Clock {
  /** Moves time forward by `ms` on top of the real clock. */
  jump(ms: number): void;
}

function jumpClock(): JumpClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    jump: (ms) => {
      offset += ms;
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Short: QUEUE_PREFIX is at most 32 characters and uniquePrefix adds the pid and 12 hex. */
const PROFILE_LABEL: Record<ProfileName, string> = {
  default: 'def',
  'strict-docs': 'docs',
  hostile: 'host',
  'laravel-unique': 'lara',
  'idempotent-replay': 'repl',
};

const ms = (n: number) => `${Math.max(1, Math.round(n))}ms`;

function exited(child: BillingChild): boolean {
  return child.proc.exitCode !== null || child.proc.signalCode !== null;
}

/** Runs one cell and returns its figures and checks. Never throws for a failed check. */
export async function runChaosCell(opts: ChaosCellOptions): Promise<ChaosCellResult> {
  const started = performance.now();
  const seed = opts.seed ?? 7;
  const timeScale = opts.timeScale ?? DEFAULT_TIME_SCALE[opts.profile];
  const kills = opts.kills ?? 5;
  const pauses = opts.pauses ?? 0;
  const subCount = opts.subscriptions ?? 6;
  const renewals = opts.renewals ?? 3;
  const lifeCapMs = opts.lifeCapMs ?? 15_000;
  const settleTimeoutMs = opts.settleTimeoutMs ?? 300_000;
  const stallMs = opts.stallMs ?? 30_000;
  const log = opts.log ?? (() => undefined);
  const N = opts.payments;

  const port = await freePort();
  const encoding = opts.encryption ?? CELL_ENCRYPTION[opts.profile];
  const encryption = encoding === 'off' ? undefined : { ...CHAOS_ENCRYPTION, encoding };
  const sandbox = await startSandbox({
    port: 0,
    profile: opts.profile,
    ...(encryption ? { encryption } : {}),
    timeScale,
    faultRate: opts.faultRate ?? 0.2,
    seed,
    // Latency keeps many calls in flight, so a kill lands mid-submission (as crash.test.ts).
    latencyMs: 40,
    hangMs: 1_500,
    settleMs: 200,
    webhookUrl: `http://127.0.0.1:${port}/webhooks/sayswitch`,
    ...opts.sandbox,
  });
  const prefix = uniquePrefix(`cx-${PROFILE_LABEL[opts.profile]}`);
  const clock = jumpClock();
  let env: Record<string, string>;
  let app: App;
  try {
    env = {
      ...FAST_ENV,
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: prefix,
      SAYSWITCH_BASE_URL: sandbox.url,
      ...(encryption
        ? {
            SAYSWITCH_ENCRYPTION_KEY: encryption.key,
            SAYSWITCH_ENCRYPTION_IV: encryption.iv,
            SAYSWITCH_ENCRYPTION_ENCODING: encryption.encoding,
          }
        : {}),
      PORT: String(port),
      HOST: '127.0.0.1',
      SUBMIT_LEASE: '1500ms',
      WORKER_LOCK_DURATION: '1s',
      WORKER_CONCURRENCY: '24',
      RECONCILE_SCHEDULE: '200ms,300ms,500ms,1s,2s,3s,5s',
      RECONCILE_CRON: '* * * * * *',
      RECONCILE_NOT_FOUND_GRACE: ms(opts.notFoundGraceMs ?? 200),
      // Past the (scaled) 3-D Secure expiry, so every challenge the gateway ends in a word we know
      // is seen ended inside the window, as with the 30 min default; a challenge that stays
      // pending at our side (`abandoned` under the extended status words) then goes pending and
      // needs_review within the drain instead of waiting 30 minutes.
      REQUIRES_ACTION_WINDOW: ms(sandbox.unknowns.threeDsExpiryMs + 4_000),
      ORPHAN_AFTER: '3s',
      DUNNING_SCHEDULE: '50ms,100ms,150ms',
      SHUTDOWN_TIMEOUT: '5s',
      LOG_LEVEL: opts.childLogLevel ?? 'warn',
    };
    app = openApp(loadConfig(env), createLogger({ level: 'silent' }), { clock });
  } catch (err) {
    await sandbox.close();
    throw err;
  }

  let child: BillingChild | undefined;
  let scheduler: RunningScheduler | undefined;
  let payer: NodeJS.Timeout | undefined;
  const crashes: string[] = [];
  try {
    // The sweep's job scheduler (the payments part of the scheduler role; the child runs it).
    await startContribution(app, paymentsModule.roles.scheduler!(paymentsDeps(app)));
    scheduler = await startSubscriptionsScheduler(app, { cron: false, blockMs: 100 });

    // Subscriptions: daily, anchored now, one of each card in turn.
    const service = subscriptionServiceDeps(app);
    const subIds: string[] = [];
    for (let s = 0; s < subCount; s++) {
      const plan = SUB_PLANS[s % SUB_PLANS.length]!;
      const id = `chaos-s${s}`;
      const res = await createSubscriptionFromBody(service, {
        id,
        customer_email: 'chaos-subs@example.com',
        card_token: 'tok_chaos_sub_0123456789',
        amount: plan.amount,
        currency: 'NGN',
        interval: 'day',
        interval_count: 1,
        anchor: new Date(clock.now()).toISOString(),
        timezone: 'Africa/Lagos',
        meta_kind: plan.kind,
      });
      if (res.status !== 'created') throw new Error(`subscription ${id}: ${res.status}`);
      subIds.push(id);
    }

    // The payers of 3-D Secure challenges (a no-op under the settled card flow).
    const decided = new Set<string>();
    payer = setInterval(() => {
      for (const [ref, a] of Object.entries(sandbox.ledger().activity)) {
        if (a.authentication !== 'awaiting' || decided.has(ref)) continue;
        decided.add(ref);
        const action = payerAction(ref, seed);
        if (action !== 'expire') sandbox.authenticate(ref, action);
      }
    }, 150);
    payer.unref();

    const settledCount = async () => {
      const c = await app.store.countByState();
      return c.succeeded + c.failed + c.reversed + c.needs_review;
    };

    // Payments, created while the worker process lives and dies (16 producers).
    let created = 0;
    const createProblems: string[] = [];
    const createDeps = {
      store: app.store,
      dispatcher: app.dispatcher,
      sealer: app.sealer,
      clock: systemClock,
      hasher: app.hasher,
    };
    const producer = (async () => {
      let next = 0;
      const one = async () => {
        while (next < N) {
          const i = next++;
          const r = await createPayment(createDeps, chaosPaymentBody(i, seed));
          if (r.status === 'created' || r.status === 'existing') created++;
          else createProblems.push(`chaos${i}: ${r.status}`);
        }
      };
      await Promise.all(Array.from({ length: 16 }, one));
    })().catch((err: unknown) => {
      createProblems.push(`creating payments failed: ${String(err)}`);
    });

    // Subscriptions: a tick per round on a clock a day further, then quiet (charges final,
    // outcomes applied, no dunning retry waiting) before the next round.
    let subsDone = false;
    let stalledRounds = 0;
    let drainDeadline = Number.POSITIVE_INFINITY;
    const tickDeps: TickDeps = (() => {
      const d = subscriptionsDeps(app);
      return {
        subs: d.subs,
        intents: d.intents,
        dispatcher: d.dispatcher,
        logger: d.logger,
        catchUpMaxPeriods: d.catchUpMaxPeriods,
      };
    })();
    const stream = storeKeys(prefix).events();
    const subsQuiet = async (): Promise<boolean> => {
      for (const state of UNSETTLED) {
        const keys = await app.store.keysInState(state, 10_000_000);
        if (keys.some((k) => k.startsWith('sub_'))) return false;
      }
      const jobs = await app.dispatcher
        .queue('subscriptions')
        .getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      if (Object.values(jobs).some((n) => n > 0)) return false;
      const groups = (await app.redis.call('XINFO', 'GROUPS', stream)) as unknown[][];
      for (const g of groups) {
        const f: Record<string, unknown> = {};
        for (let i = 0; i + 1 < g.length; i += 2) f[String(g[i])] = g[i + 1];
        if (f.name === SUBSCRIPTIONS_GROUP) return Number(f.lag) === 0 && Number(f.pending) === 0;
      }
      return false;
    };
    const subDriver = (async () => {
      for (let round = 0; round <= renewals; round++) {
        if (round > 0) clock.jump(DAY);
        await runTick(tickDeps, clock.now());
        // Quiet twice in a row (a dunning job may fire between two reads). A round's charges
        // queue behind the payments, so it may take as long as they do; it is given up only once
        // the drain ends, and then it and the rounds after it count as stalled.
        let streak = 0;
        while (streak < 2 && Date.now() < drainDeadline) {
          await until(subsQuiet, {
            done: (q) => (streak = q ? streak + 1 : 0) >= 2 || Date.now() >= drainDeadline,
            what: `subscription round ${round} quiet`,
            timeoutMs: 10_000,
            intervalMs: 200,
          }).catch(() => undefined);
        }
        if (streak < 2) {
          stalledRounds = renewals + 1 - round;
          break;
        }
      }
    })()
      .catch((err: unknown) => {
        stalledRounds++;
        log(`  ${opts.profile}: subscription round failed: ${String(err)}`);
      })
      .finally(() => {
        subsDone = true;
      });

    // The worker process, SIGKILLed once it is visibly mid-way through work (or after lifeCapMs).
    const runStarted = performance.now();
    // The lives that pause first, spread over the run: the odd ones, then the even ones.
    const lives = [...Array(kills).keys()];
    const pauseLives = new Set(
      [...lives.filter((k) => k % 2 === 1), ...lives.filter((k) => k % 2 === 0)].slice(0, pauses),
    );
    for (let k = 0; k < kills; k++) {
      child = spawnBilling(['start', '--roles', CHILD_ROLES], env);
      const step = Math.max(10, Math.round((N / (kills + 1)) * (0.5 + unit(k, seed, 7) * 0.5)));
      const target = (await settledCount()) + step;
      const life = child;
      await until(settledCount, {
        done: (n) => n >= target || exited(life),
        what: `${target} intents settled`,
        timeoutMs: lifeCapMs,
        intervalMs: 50,
      }).catch(() => undefined);
      // Killed while a claim is out (an intent `submitting`), so every cell exercises the orphaned
      // lease path: a kill between two claims orphans none, and a cell once ended with none.
      await until(() => app.store.countByState(), {
        done: (c) => c.submitting > 0 || exited(life),
        what: 'a claim in flight',
        timeoutMs: 5_000,
        intervalMs: 5,
      }).catch(() => undefined);
      if (exited(child))
        crashes.push(`life ${k + 1}: exited by itself\n${child.output().slice(-3_000)}`);
      const paused = pauseLives.has(k);
      if (paused) {
        // Stopped with its claims out; a stand-in works (and the sweep expires those leases)
        // meanwhile; then it wakes up holding stale claims for a second before it is killed.
        child.kill('SIGSTOP');
        const standIn = spawnBilling(['start', '--roles', CHILD_ROLES], env);
        await sleep(PAUSE_MS);
        child.kill('SIGCONT');
        await sleep(1_000);
        standIn.kill('SIGKILL');
        await standIn.exited;
      }
      child.kill('SIGKILL');
      await child.exited;
      log(
        `  ${opts.profile}: ${paused ? 'pause and ' : ''}kill ${k + 1}/${kills} at ${await settledCount()} settled, ${created} created`,
      );
    }
    const runMs = performance.now() - runStarted;

    // Drain: one more life, left to finish everything.
    const drainStarted = performance.now();
    child = spawnBilling(['start', '--roles', CHILD_ROLES], env);
    await producer;
    drainDeadline = Date.now() + settleTimeoutMs;
    const opSweep = { ...sweepDeps(app), clock: systemClock };
    let lastSweep = Date.now();
    let lastPrint = '';
    let streak = 0;
    const last = child;
    const snapshot = async () => {
      if (Date.now() - lastSweep >= 3_000) {
        // What `billing reconcile --older-than 2s` does.
        lastSweep = Date.now();
        await runSweep(opSweep, { olderThanMs: 2_000 });
      }
      const counts = await app.store.countByState();
      const ledger = sandbox.ledger();
      let pendingAtGateway = 0;
      let transitions = 0;
      for (const a of Object.values(ledger.activity)) transitions += a.statuses.length;
      for (const e of Object.values(ledger.references))
        if (e.status === 'pending') pendingAtGateway++;
      const reconcile = await app.dispatcher
        .queue('reconcile')
        .getJobCounts('waiting', 'active', 'prioritized');
      const open = UNSETTLED.reduce((n, s) => n + counts[s], 0);
      const quiet =
        subsDone &&
        open === 0 &&
        pendingAtGateway === 0 &&
        Object.values(reconcile).every((n) => n === 0) &&
        (await subsQuiet());
      // What counts as progress: intents, the ledger, and the reconcile backlog draining.
      const print = JSON.stringify([counts, transitions, reconcile]);
      return { quiet, print, open, pendingAtGateway, crashed: exited(last) };
    };
    // Quiet, and nothing changed, four polls in a row: covers the payout watch after a success.
    // Given up early when nothing at all changed for `stallMs` (intents, ledger) while unsettled.
    let lastChange = Date.now();
    const drained = await until(snapshot, {
      done: (s) => {
        if (s.print !== lastPrint) lastChange = Date.now();
        streak = s.quiet && s.print === lastPrint ? streak + 1 : 0;
        lastPrint = s.print;
        return streak >= 4 || s.crashed || Date.now() - lastChange >= stallMs;
      },
      what: 'every intent settled and the sandbox quiet',
      timeoutMs: settleTimeoutMs,
      intervalMs: 400,
    }).catch(() => undefined);
    drainDeadline = Date.now();
    await subDriver;
    const settled = streak >= 4;
    const drainState = drained
      ? `at the end: ${drained.open} intents open, ${drained.pendingAtGateway} references pending at the gateway, subscriptions ${subsDone ? 'done' : 'still running'}`
      : 'the drain timed out';

    if (exited(child)) crashes.push(`drain: exited by itself\n${child.output().slice(-3_000)}`);
    child.kill('SIGTERM');
    const stopping = child;
    const stopped = await until(() => exited(stopping), { timeoutMs: 20_000 }).catch(() => false);
    if (!stopped) child.kill('SIGKILL');
    const code = await child.exited;
    const drainMs = performance.now() - drainStarted;
    clearInterval(payer);
    payer = undefined;

    // The verdict.
    const ledger = sandbox.ledger();
    const intents = await readIntents(app);
    const apiKeys = Array.from({ length: N }, (_, i) => `api_chaos${i}`);
    const analysis = analyse(intents, ledger, apiKeys);
    if (createProblems.length > 0) {
      analysis.checks
        .find((c) => c.name === 'unsettled')!
        .examples.unshift(...createProblems.slice(0, 3));
    }
    if (!settled) {
      const notQuiet = analysis.checks.find((c) => c.name === 'not_quiet')!;
      notQuiet.count = 1;
      notQuiet.examples = [drainState];
    }
    const stalled = analysis.checks.find((c) => c.name === 'subscriptions_stalled')!;
    stalled.count = stalledRounds;
    const crashCheck = analysis.checks.find((c) => c.name === 'child_crashed')!;
    crashCheck.count = crashes.length;
    crashCheck.examples = crashes.slice(0, 2);
    const shutdown = analysis.checks.find((c) => c.name === 'unclean_shutdown')!;
    if (code !== 0 && !crashes.some((c) => c.startsWith('drain'))) {
      shutdown.count = 1;
      shutdown.examples = [`exit ${String(code)}`];
    }

    const statuses: Record<string, number> = {};
    for (const id of subIds) {
      const s = (await app.subscriptions.get(id))?.sub.status ?? 'missing';
      statuses[s] = (statuses[s] ?? 0) + 1;
    }
    const threeDs: Record<string, number> = {};
    let duplicates = 0;
    for (const a of Object.values(ledger.activity)) {
      if (a.authentication) threeDs[a.authentication] = (threeDs[a.authentication] ?? 0) + 1;
      duplicates += a.duplicates;
    }
    const { leaseExpired, wentUnknown } = await crashPaths(app, intents);
    const result: ChaosCellResult = {
      profile: opts.profile,
      cell: [
        opts.profile,
        ...(encryption ? [`encryption=${encryption.encoding}`] : []),
        ...Object.entries(opts.sandbox ?? {}).map(
          ([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
        ),
      ].join(' '),
      duplicates,
      seed,
      timeScale,
      payments: N,
      api: analysis.api,
      subs: { ...analysis.subs, subscriptions: subCount, statuses, stalledRounds },
      movedReferences: analysis.movedReferences,
      movedNeedsReview: analysis.movedNeedsReview,
      needsReviewByCents: analysis.needsReviewByCents,
      needsReviewExamples: analysis.needsReviewExamples,
      threeDs,
      kills,
      pauses: pauseLives.size,
      leaseExpired,
      wentUnknown,
      settled,
      durationMs: performance.now() - started,
      runMs,
      drainMs,
      checks: analysis.checks,
      ok: analysis.checks.every((c) => c.count === 0),
    };
    if (!result.ok) result.childOutput = child.output().slice(-4_000);
    return result;
  } finally {
    if (payer) clearInterval(payer);
    if (child && !exited(child)) {
      child.kill('SIGKILL');
      await child.exited;
    }
    await scheduler?.stop();
    await cleanupPrefix(app.redis, prefix);
    await app.close();
    await sandbox.close();
  }
}

/** Every intent of the cell's prefix (the union of the per-state indexes), read in chunks. */
async function readIntents(app: App): Promise<Intent[]> {
  const keys = new Set<string>();
  for (const state of INTENT_STATES) {
    for (const k of await app.store.keysInState(state, 10_000_000)) keys.add(k);
  }
  const all = [...keys];
  const out: Intent[] = [];
  for (let i = 0; i < all.length; i += 500) {
    const chunk = await Promise.all(all.slice(i, i + 500).map((k) => app.store.get(k)));
    for (const intent of chunk) if (intent) out.push(intent);
  }
  return out;
}

/** Whether the crash paths were exercised: claims orphaned by a kill, outcomes gone unknown. */
async function crashPaths(app: App, intents: readonly Intent[]) {
  let leaseExpired = 0;
  let wentUnknown = 0;
  for (let i = 0; i < intents.length; i += 500) {
    const histories = await Promise.all(
      intents.slice(i, i + 500).map((it) => app.store.history(it.key)),
    );
    for (const h of histories) {
      if (h.some((e) => e.reason === 'lease_expired')) leaseExpired++;
      if (h.some((e) => e.to === 'unknown')) wentUnknown++;
    }
  }
  return { leaseExpired, wentUnknown };
}

// ---------------------------------------------------------------------------------------------
// The checks (pure: intents and the ledger in, counts and examples out)

export interface Analysis {
  api: StateCounts;
  subs: StateCounts;
  movedReferences: number;
  movedNeedsReview: number;
  /** needs_review intents by the amount's cents (the sandbox outcome table's row). */
  needsReviewByCents: Record<string, number>;
  /** A few needs_review intents with what the ledger says about them. */
  needsReviewExamples: string[];
  checks: ChaosCheck[];
}

function emptyCounts(): StateCounts {
  return { total: 0, succeeded: 0, failed: 0, reversed: 0, needs_review: 0, unsettled: 0 };
}

/** One line about a reference, from the ledger. */
function describeRef(ledger: Ledger, ref: string): string {
  const a = ledger.activity[ref];
  if (!a) return `${ref}: never submitted`;
  const e = ledger.references[ref];
  return (
    `${ref}: moves=${a.moves} reversals=${a.reversals} submissions=${a.submissions} ` +
    `duplicates=${a.duplicates} statuses=${a.statuses.join('>') || '-'}` +
    (e ? ` now=${e.status}${e.moneyMoved ? ' (moved)' : ''}` : ' (never recorded)') +
    (a.authentication ? ` 3ds=${a.authentication}` : '')
  );
}

/**
 * Checks `intents` (every intent of the cell) against the ledger. `apiKeys`: the API payments
 * that must exist. A reference "moved" when the ledger counts a move for it (activity moves > 0),
 * even if the money came back later (a reversal).
 */
export function analyse(
  intents: readonly Intent[],
  ledger: Ledger,
  apiKeys: readonly string[],
): Analysis {
  const found: Record<CheckName, string[]> = {
    reference_moved_twice: [],
    payment_moved_twice: [],
    period_charged_twice: [],
    failed_but_moved: [],
    unsettled: [],
    succeeded_mismatch: [],
    reversed_mismatch: [],
    moved_not_succeeded: [],
    not_quiet: [],
    subscriptions_stalled: [],
    child_crashed: [],
    unclean_shutdown: [],
  };
  const moves = (ref: string) => ledger.activity[ref]?.moves ?? 0;
  const byKey = new Map(intents.map((i) => [i.key as string, i]));
  const api = emptyCounts();
  const subs = emptyCounts();
  let movedNeedsReview = 0;
  const needsReviewByCents: Record<string, number> = {};
  const needsReviewExamples: string[] = [];

  for (const key of apiKeys) if (!byKey.has(key)) found.unsettled.push(`${key}: missing`);
  for (const intent of intents) {
    const counts = intent.key.startsWith('sub_') ? subs : api;
    counts.total++;
    const refs = Array.from({ length: intent.attempt }, (_, n) => `${intent.key}_${n + 1}`);
    const moved = refs.filter((r) => moves(r) > 0);
    const about = () =>
      `${intent.key} ${intent.state} (attempt ${intent.attempt}${intent.reason ? `, ${intent.reason}` : ''}); ` +
      refs.map((r) => describeRef(ledger, r)).join('; ');
    if (moved.length > 1) {
      (intent.key.startsWith('sub_') ? found.period_charged_twice : found.payment_moved_twice).push(
        about(),
      );
    }
    switch (intent.state) {
      case 'succeeded': {
        counts.succeeded++;
        const entry = ledger.references[intent.reference];
        if (moved.length !== 1 || moved[0] !== intent.reference || !entry?.moneyMoved)
          found.succeeded_mismatch.push(about());
        break;
      }
      case 'reversed': {
        counts.reversed++;
        const a = ledger.activity[intent.reference];
        if (moved.length !== 1 || moved[0] !== intent.reference || !a || a.reversals < 1)
          found.reversed_mismatch.push(about());
        break;
      }
      case 'failed':
        counts.failed++;
        if (moved.length > 0) found.failed_but_moved.push(about());
        break;
      case 'needs_review':
        counts.needs_review++;
        if (moved.length > 0) movedNeedsReview += moved.length;
        {
          const cents = String(intent.amount % 100).padStart(2, '0');
          needsReviewByCents[cents] = (needsReviewByCents[cents] ?? 0) + 1;
          if (needsReviewExamples.length < 5) needsReviewExamples.push(about());
        }
        break;
      default:
        counts.unsettled++;
        found.unsettled.push(about());
    }
  }

  let movedReferences = 0;
  for (const [ref, a] of Object.entries(ledger.activity)) {
    if (a.moves > 1) found.reference_moved_twice.push(describeRef(ledger, ref));
    if (a.moves === 0) continue;
    movedReferences++;
    const parsed = parseAttemptReference(ref);
    const intent = parsed ? byKey.get(parsed.key) : undefined;
    if (!intent) found.moved_not_succeeded.push(`${describeRef(ledger, ref)}; no such intent`);
    else if (!['succeeded', 'reversed', 'needs_review'].includes(intent.state))
      found.moved_not_succeeded.push(`${describeRef(ledger, ref)}; intent ${intent.state}`);
  }

  const checks = (Object.keys(CHECKS) as CheckName[]).map((name) => ({
    name,
    count: found[name].length,
    examples: found[name].slice(0, 5),
  }));
  return {
    api,
    subs,
    movedReferences,
    movedNeedsReview,
    needsReviewByCents,
    needsReviewExamples,
    checks,
  };
}

// ---------------------------------------------------------------------------------------------
// Reporting

const seconds = (msValue: number) => `${(msValue / 1000).toFixed(1)} s`;

/** One line per cell. */
export function formatRow(r: ChaosCellResult): string {
  const bad = failedChecks(r)
    .map((c) => `${c.name}=${c.count}`)
    .join(' ');
  return (
    `${r.cell}: ${r.api.total} payments, ${r.api.succeeded} succeeded, ${r.api.failed} failed, ` +
    `${r.api.reversed} reversed, ${r.api.needs_review} needs_review, ${r.api.unsettled} unsettled; ` +
    `subs ${r.subs.total} charges (${r.subs.succeeded} paid, ${r.subs.failed} failed, ` +
    `${r.subs.needs_review} needs_review); ${seconds(r.durationMs)}; ${bad === '' ? 'OK' : bad}`
  );
}

/** The matrix as a Markdown table (what docs/operations.md shows). */
export function formatTable(results: readonly ChaosCellResult[]): string {
  const header = [
    'profile',
    'payments',
    'succeeded',
    'failed',
    'reversed',
    'needs_review',
    'unsettled',
    'sub charges (paid/failed/review)',
    'subs active/past_due/canceled',
    '3DS completed/failed/abandoned/expired',
    'moved refs (of needs_review)',
    'kills (lease expired / unknown)',
    'duration (run + drain)',
    'checks',
  ];
  const rows = results.map((r) => {
    const bad = failedChecks(r)
      .map((c) => `${c.name} ${c.count}`)
      .join(', ');
    const t = r.threeDs;
    const threeDs =
      Object.keys(t).length === 0
        ? '–'
        : `${t.completed ?? 0}/${t.failed ?? 0}/${t.abandoned ?? 0}/${t.expired ?? 0}` +
          (t.awaiting ? ` (+${t.awaiting} awaiting)` : '');
    const st = r.subs.statuses;
    return [
      `${r.cell} (×${r.timeScale})`,
      String(r.api.total),
      String(r.api.succeeded),
      String(r.api.failed),
      String(r.api.reversed),
      String(r.api.needs_review),
      String(r.api.unsettled),
      `${r.subs.total} (${r.subs.succeeded}/${r.subs.failed}/${r.subs.needs_review})`,
      `${st.active ?? 0}/${st.past_due ?? 0}/${st.canceled ?? 0}`,
      threeDs,
      `${r.movedReferences} (${r.movedNeedsReview})`,
      `${r.kills}${r.pauses > 0 ? `, ${r.pauses} paused` : ''} (${r.leaseExpired} / ${r.wentUnknown})`,
      `${seconds(r.durationMs)} (${seconds(r.runMs)} + ${seconds(r.drainMs)})`,
      bad === '' ? 'all pass' : bad,
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The failing checks of each cell, with examples, for a report. */
export function formatFailures(results: readonly ChaosCellResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    for (const c of failedChecks(r)) {
      out.push(`${r.cell} ${c.name} (${c.count}): ${CHECKS[c.name]}`);
      for (const e of c.examples) out.push(`    ${e}`);
    }
  }
  return out.join('\n');
}
