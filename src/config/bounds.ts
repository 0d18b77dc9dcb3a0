/**
 * The bounds of every duration variable, and of each delay of every schedule: one table that
 * config.ts builds its schema and its live-key rules from, and that the tests hold .env.example
 * to. Every maximum fits a Node timer ({@link MAX_TIMER_MS}); a value outside its bounds stops the
 * start (exit 2) with a message naming the variable and the bound it broke.
 */
import { parseDurationMs } from './duration.ts';
import { MAX_TIMER_MS, SHUTDOWN_CLOSE_RESERVE_MS } from './limits.ts';

export interface DurationBound {
  /** The least value, a duration as written in the environment. */
  min: string;
  /** Why: part of the error message. */
  minWhy: string;
  max: string;
  maxWhy: string;
  /**
   * A higher minimum when real money moves: a live secret key (not `sk_test_`). The repository's
   * tests and the demo run against the sandbox with test keys and much shorter timings.
   */
  live?: { min: string; why: string };
}

const TIMER = 'the longest a timer can wait is 2^31-1 ms, about 24.8 days';

/** Duration variables: their bounds (the defaults stay in config.ts's schema). */
export const DURATION_BOUNDS = {
  SUBMIT_LEASE: {
    min: '1s',
    minWhy: 'it must cover a gateway call and recording its outcome',
    max: '1h',
    maxWhy: "a dead worker's payment waits that long before it is verified",
  },
  WORKER_LOCK_DURATION: {
    min: '1s',
    minWhy:
      'BullMQ renews the lock every half of it and looks for stalled jobs every period; 0 stops the worker',
    max: '10m',
    maxWhy: "a dead worker's jobs wait up to twice this before they run again",
  },
  WORKER_STUCK_AFTER: {
    min: '1s',
    minWhy: 'a shorter bound would replace healthy workers between fetches',
    max: '1h',
    maxWhy: 'a worker that stopped fetching would leave its jobs waiting that long',
  },
  RECONCILE_NOT_FOUND_GRACE: {
    min: '100ms',
    minWhy: 'a not-found sooner after the request left proves nothing',
    live: {
      min: '30s',
      why:
        "Sayswitch's lookups can lag behind a new reference, and a refund resent on an early " +
        'not-found pays back twice (docs/refunds.md)',
    },
    max: '24h',
    maxWhy: 'an unsent payment would wait that long before it is sent again',
  },
  ORPHAN_AFTER: {
    min: '1s',
    minWhy: 'a younger queued payment may still be getting its job',
    live: {
      min: '1m',
      why: 'payments being created and enqueued (a batch) must not race the sweep',
    },
    max: '24h',
    maxWhy: 'a payment whose job was lost would wait that long',
  },
  REQUIRES_ACTION_WINDOW: {
    min: '100ms',
    minWhy: 'the customer needs some time to answer the challenge',
    max: '24d',
    maxWhy: TIMER,
  },
  RESOLVE_UNKNOWN_AFTER: {
    min: '1m',
    minWhy: 'the reconciler gets the first look at an unknown payment',
    max: '7d',
    maxWhy: 'an unknown payment nobody may resolve for longer is stuck',
  },
  TRIAL_WILL_END_NOTICE: {
    min: '1m',
    minWhy: 'a notice at the end of the trial is no notice',
    max: '24d',
    maxWhy: TIMER,
  },
  DASHBOARD_SIGN_IN_BLOCK: {
    min: '1s',
    minWhy: 'failed sign-ins are counted in whole seconds',
    max: '1d',
    maxWhy: 'an operator who mistyped behind the same address waits that long',
  },
  SHUTDOWN_TIMEOUT: {
    min: '4s',
    minWhy: `\`billing start\` keeps ${SHUTDOWN_CLOSE_RESERVE_MS / 1000}s of it for closing connections, and in-flight jobs need the rest`,
    max: '1h',
    maxWhy: 'work not finished by then is recovered anyway, once its lease and lock expire',
  },
} as const satisfies Record<string, DurationBound>;

/** Schedules: the bounds of each of their delays. */
export const SCHEDULE_BOUNDS = {
  RECONCILE_SCHEDULE: {
    min: '10ms',
    minWhy: 'a zero delay checks in a loop',
    max: '24d',
    maxWhy: TIMER,
  },
  PAYOUT_WATCH_SCHEDULE: {
    min: '10ms',
    minWhy: 'a zero delay checks in a loop',
    max: '24d',
    maxWhy: TIMER,
  },
  DUNNING_SCHEDULE: {
    min: '10ms',
    minWhy: 'a zero delay retries a declined card at once',
    max: '24d',
    maxWhy: TIMER,
  },
  NOTIFY_RETRY_SCHEDULE: {
    min: '10ms',
    minWhy: 'a zero delay retries in a loop',
    max: '24d',
    maxWhy: TIMER,
  },
} as const satisfies Record<string, DurationBound>;

/** Milliseconds of a bound written as a duration (the table's own strings, always valid). */
export function boundMs(text: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined || ms > MAX_TIMER_MS) throw new Error(`bad bound ${text}`);
  return ms;
}

/** The problem with `ms` against `bound`, or undefined when it is within it. */
export function boundProblem(
  ms: number,
  bound: DurationBound,
  what = 'must be',
): string | undefined {
  if (ms < boundMs(bound.min)) return `${what} at least ${bound.min} (${bound.minWhy})`;
  if (ms > boundMs(bound.max)) return `${what} at most ${bound.max} (${bound.maxWhy})`;
  return undefined;
}
