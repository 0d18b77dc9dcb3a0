/**
 * Test clocks (test mode only; docs/subscriptions.md "Test clocks"): a clock is a time of its own
 * that subscriptions created under it live on. Advancing it runs everything that falls due up to
 * the target through the real queues — ticks, charges, outcomes, dunning retries, trial notices,
 * scheduled resumes and cancels — one due instant at a time, waiting at each until what it
 * started has settled, so a year of billing plays out in seconds and exactly as it would have.
 * Pure rules here; clock-runner.ts runs them as `subscriptions.tick` jobs.
 *
 * A clock never affects anything outside it: its subscriptions are in a due index of their own
 * (never the deployment's), their dunning retries are run by the clock, not by delayed jobs, and
 * every decision about them (actions, outcomes, retries) takes the clock's time as `now`. The
 * payments themselves keep real time: a charge's intent is timestamped by the clock at creation
 * and by the payment machinery after that, and a charge the gateway settles later (pending, a
 * 3-D Secure challenge) settles in real time.
 *
 * **Advancing** is a chain of jobs, each acting for one `seq` of the clock (a duplicate or stale
 * job does nothing), each storing the next step with compare-and-set before enqueueing it:
 * 1. `tick` at the clock's time `t`: a tick of the clock's subscriptions (tick.ts) at `t`.
 * 2. `settle` at `t`: waits (re-checking every poll) until nothing the clock's subscriptions
 *    started is in flight: no charge queued, submitting, or waiting for the gateway (`unknown`,
 *    `pending`: payments' reconciliation settles those by itself, in real time), every final
 *    outcome applied, every dunning retry due by `t` run (the check enqueues those not yet run)
 *    and its attempt answered. A charge that waits for a person (`requires_action`: the
 *    customer's challenge; `needs_review`: an operator) counts as answered: it holds billing by
 *    rule 9 whatever the clock does, and waiting for it would stop the clock. Then the clock
 *    moves to the next instant anything is due (`nextWake`), capped by the target, and goes back
 *    to 1; at the target it is `ready`.
 * A settle that keeps finding work for `maxChecks` polls gives up waiting (logged) rather than
 * hang the clock.
 */
import { z } from 'zod';
import { dueScore, retryOf, type DunningRetry, type Subscription } from './record.ts';
import type { IntentState } from '../kernel/intent.ts';

export const CLOCK_STATUSES = ['ready', 'advancing'] as const;
export type ClockStatus = (typeof CLOCK_STATUSES)[number];

/** A test clock as stored. */
export interface TestClock {
  id: string;
  name?: string;
  /** The clock's time. */
  frozenTime: number;
  status: ClockStatus;
  /** While advancing: the target. */
  advancingTo?: number;
  /** While advancing: what the job of `seq` does at `frozenTime`. */
  phase?: 'tick' | 'settle';
  /** The position in the job chain: only the job of this `seq` may act. */
  seq: number;
  /** Settle checks made at the current time. */
  checks: number;
  /** Real time. */
  createdAt: number;
  /**
   * Being deleted (clocks-service.ts `deleteTestClock`): set before its subscriptions are
   * canceled, so from then on it is gone for everyone else (read, advance, a new subscription).
   */
  deleting?: true;
}

export const testClockSchema = z.object({
  id: z.string().min(1),
  name: z.string().optional(),
  frozenTime: z.number(),
  status: z.enum(CLOCK_STATUSES),
  advancingTo: z.number().optional(),
  phase: z.enum(['tick', 'settle']).optional(),
  seq: z.number().int().min(0),
  checks: z.number().int().min(0),
  createdAt: z.number(),
  deleting: z.literal(true).optional(),
}) satisfies z.ZodType<TestClock>;

/** A clock's id: `clock_` and 24 hex digits (part of Redis keys and job ids). */
export const CLOCK_ID = /^clock_[0-9a-f]{24}$/;

/** The job id of the clock's step `seq`. */
export function clockJobId(id: string, seq: number): string {
  return `clk-${id}-${seq}`;
}

/** A new clock at `frozenTime`. */
export function newClock(
  id: string,
  frozenTime: number,
  createdAt: number,
  name?: string,
): TestClock {
  return {
    id,
    frozenTime,
    status: 'ready',
    seq: 0,
    checks: 0,
    createdAt,
    ...(name !== undefined ? { name } : {}),
  };
}

/** Starts advancing to `to`: first a tick at the current time (what is due right now). */
export function startAdvance(clock: TestClock, to: number): TestClock {
  return { ...clock, status: 'advancing', advancingTo: to, phase: 'tick', seq: clock.seq + 1 };
}

/** What an intent is, as far as settling goes. */
export interface IntentSnapshot {
  state: IntentState;
  attempt: number;
}

/** In flight, or waiting for the gateway (reconciliation settles these by itself). */
const IN_FLIGHT: readonly IntentState[] = ['queued', 'submitting', 'unknown', 'pending'];
const inFlight = (s: IntentState) => IN_FLIGHT.includes(s);
/** Waiting for a person (the customer's challenge, an operator): the clock does not wait. */
const forAPerson = (s: IntentState) => s === 'requires_action' || s === 'needs_review';

/** The intent keys whose state settling at `t` depends on. */
export function keysToRead(subs: readonly Subscription[], t: number): string[] {
  const keys = new Set<string>();
  for (const sub of subs) {
    for (const c of sub.openCharges) keys.add(c.key);
    if (sub.status === 'paused' || sub.status === 'canceled') continue;
    for (const d of sub.dunning) if (d.dueAt <= t) keys.add(d.key);
  }
  return [...keys];
}

/**
 * What keeps the clock from moving on at `t`: charges in flight or with an outcome not applied
 * yet (`busy`, described for the logs), and dunning retries due by `t` not run yet (`retries`,
 * to enqueue). Settled when both are empty.
 */
export function pendingWork(
  subs: readonly Subscription[],
  intents: ReadonlyMap<string, IntentSnapshot | undefined>,
  t: number,
): { busy: string[]; retries: DunningRetry[] } {
  const busy: string[] = [];
  const retries: DunningRetry[] = [];
  for (const sub of subs) {
    for (const c of sub.openCharges) {
      const i = intents.get(c.key);
      // Missing: a claim that died before creating it (the next tick claims it again).
      if (!i || forAPerson(i.state)) continue;
      busy.push(`${c.key} ${i.state}${inFlight(i.state) ? '' : ' (outcome not applied yet)'}`);
    }
    if (sub.status === 'paused' || sub.status === 'canceled') continue;
    for (const d of sub.dunning) {
      if (d.dueAt > t) continue;
      const i = intents.get(d.key);
      if (!i) continue;
      if (i.attempt === d.attempt && i.state === 'failed') retries.push(retryOf(sub, d));
      else if (i.attempt > d.attempt && !forAPerson(i.state))
        busy.push(`${d.key} attempt ${i.attempt} ${i.state} (retry ${d.step + 1})`);
    }
  }
  return { busy, retries };
}

/** The next instant after `t` at which anything is due for one of `subs`, if any. */
export function nextWake(subs: readonly Subscription[], t: number): number | undefined {
  let wake = Infinity;
  for (const sub of subs) {
    const score = dueScore(sub);
    if (score !== null && score > t) wake = Math.min(wake, score);
    if (sub.status === 'paused' || sub.status === 'canceled') continue;
    for (const d of sub.dunning) if (d.dueAt > t) wake = Math.min(wake, d.dueAt);
  }
  return wake === Infinity ? undefined : wake;
}

/**
 * The step after a settled (or given up) check at the clock's time: the next wake, capped by the
 * target, ticked there; `ready` once the target itself has settled.
 */
export function afterSettle(clock: TestClock, wake: number | undefined): TestClock {
  const target = clock.advancingTo ?? clock.frozenTime;
  const base = { ...clock, seq: clock.seq + 1, checks: 0 };
  if (clock.frozenTime >= target) {
    const { advancingTo: _done, phase: _none, ...rest } = base;
    return { ...rest, status: 'ready' };
  }
  return { ...base, phase: 'tick', frozenTime: Math.min(target, wake ?? target) };
}
