/**
 * Runs advancing test clocks (test-clocks.ts): the `subscriptions.tick` handler for a job that
 * names a clock, one step of the clock's chain per job, and the restart of chains whose next job
 * was lost (from the deployment's own ticks). Also how everything else learns a subscription's
 * time: its clock's, or the real one.
 */
import { z } from 'zod';
import type { Clock } from '../kernel/clock.ts';
import { UnreadableRecordError } from '../kernel/errors.ts';
import type { IntentStore } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { enqueueClockStep, enqueueDunningNow } from './jobs.ts';
import type { SubscriptionStore, VersionedClock } from './ports.ts';
import {
  afterSettle,
  keysToRead,
  nextWake,
  pendingWork,
  type IntentSnapshot,
  type TestClock,
} from './test-clocks.ts';
import { runTick, type TickDeps } from './tick.ts';

export interface ClockRunnerDeps extends TickDeps {
  subs: SubscriptionStore;
  intents: IntentStore;
  dispatcher: Dispatcher;
  logger: Logger;
  /** Between two settle checks. Default 50 ms. */
  clockPollMs?: number;
  /** Settle checks at one instant before the clock stops waiting (logged). Default 1 200. */
  clockMaxChecks?: number;
}

/** The payload of a clock's step (a `subscriptions.tick` job; the cron's own ticks carry none). */
export const clockStepSchema = z.object({
  testClock: z.string().min(1),
  seq: z.number().int().min(0),
});

/** The time a subscription lives on: its test clock's, else `clock`'s. Undefined: no such clock. */
export async function timeOf(
  subs: SubscriptionStore,
  clock: Clock,
  testClock: string | undefined,
): Promise<number | undefined> {
  if (testClock === undefined) return clock.now();
  return (await subs.clocks.get(testClock))?.clock.frozenTime;
}

/** The times of several subscriptions' clocks, by clock id (one round trip). */
export async function clockTimes(
  subs: SubscriptionStore,
  ids: Iterable<string | undefined>,
): Promise<Map<string, number>> {
  const unique = [...new Set([...ids].filter((id): id is string => id !== undefined))];
  const found = await subs.clocks.getMany(unique);
  const out = new Map<string, number>();
  unique.forEach((id, i) => {
    const c = found[i];
    if (c) out.set(id, c.clock.frozenTime);
  });
  return out;
}

async function step(
  deps: ClockRunnerDeps,
  found: VersionedClock,
  next: TestClock,
  delayMs: number,
): Promise<Record<string, unknown>> {
  const version = await deps.subs.clocks.save(next, found.version);
  if (version === undefined) return { skipped: 'raced' };
  if (next.status === 'advancing') await enqueueClockStep(deps.dispatcher, next, delayMs);
  return {
    clock: next.id,
    seq: next.seq,
    status: next.status,
    phase: next.phase ?? null,
    at: new Date(next.frozenTime).toISOString(),
  };
}

/** One step of an advancing clock (a tick at its time, or a settle check); see test-clocks.ts. */
export async function runClockStep(
  deps: ClockRunnerDeps,
  data: z.output<typeof clockStepSchema>,
): Promise<unknown> {
  const found = await deps.subs.clocks.get(data.testClock);
  if (!found) return { skipped: 'missing' };
  const clock = found.clock;
  if (clock.status !== 'advancing' || clock.seq !== data.seq) return { skipped: 'stale' };
  const t = clock.frozenTime;
  const log = deps.logger.child({ component: 'test-clock', clock: clock.id });

  if (clock.phase === 'tick') {
    const result = await runTick({ ...deps, testClock: clock.id }, t);
    if (result.failed > 0) log.warn({ at: t, ...result }, 'test clock tick had failures');
    return step(deps, found, { ...clock, phase: 'settle', checks: 0, seq: clock.seq + 1 }, 0);
  }

  const ids = await deps.subs.clocks.members(clock.id);
  const subs = (await deps.subs.readMany(ids)).flatMap((d) => {
    if (d instanceof UnreadableRecordError) {
      // The tick names it too when it is due; the clock settles and moves on without it. Named
      // at the first check of each instant only: the settle may check every poll for minutes.
      if (clock.checks === 0)
        log.error(
          { subscriptionId: d.id, why: d.why },
          'subscription on the test clock cannot be read by this version: the clock goes on without it',
        );
      return [];
    }
    return d ? [d.sub] : [];
  });
  const keys = keysToRead(subs, t);
  const read = await Promise.all(
    keys.map((k) =>
      deps.intents.get(k).catch((err: unknown) => {
        if (!(err instanceof UnreadableRecordError)) throw err;
        // Waiting would not make it readable: the settle goes on without it, as without a
        // charge not created yet (no retry is sent for it). Named at each instant's first check.
        if (clock.checks === 0)
          log.error(
            { key: err.id, why: err.why },
            "a charge on the test clock cannot be read by this version: the clock's settle goes on without it",
          );
        return undefined;
      }),
    ),
  );
  const intents = new Map<string, IntentSnapshot | undefined>(
    keys.map((k, i) => {
      const intent = read[i];
      return [k, intent && { state: intent.state, attempt: intent.attempt }];
    }),
  );
  const work = pendingWork(subs, intents, t);
  if (work.retries.length > 0) await enqueueDunningNow(deps.dispatcher, work.retries);
  const waiting = work.busy.length > 0 || work.retries.length > 0;
  const maxChecks = deps.clockMaxChecks ?? 1_200;
  if (waiting && clock.checks < maxChecks)
    return step(
      deps,
      found,
      { ...clock, checks: clock.checks + 1, seq: clock.seq + 1 },
      deps.clockPollMs ?? 50,
    );
  if (waiting)
    log.warn(
      { at: new Date(t).toISOString(), busy: work.busy.slice(0, 20), retries: work.retries.length },
      'test clock moves on without everything settled: it kept waiting too long',
    );
  return step(deps, found, afterSettle(clock, nextWake(subs, t)), 0);
}

/**
 * Re-enqueues the current step of every advancing clock. The job id is the step's, so a step
 * whose job still exists collapses into it; one whose job was lost (the process died between
 * storing the step and enqueueing it) runs. Called by the deployment's ticks. A clock this
 * version cannot read is skipped and logged by id (left as it is, named again by every kick).
 */
export async function kickAdvancingClocks(deps: ClockRunnerDeps): Promise<number> {
  const ids = await deps.subs.clocks.advancing(1_000);
  const clocks = await deps.subs.clocks.readMany(ids);
  let kicked = 0;
  for (const c of clocks) {
    if (c instanceof UnreadableRecordError) {
      deps.logger.error(
        { component: 'test-clock', clock: c.id, why: c.why },
        'advancing test clock cannot be read by this version: not restarted; it stays advancing',
      );
      continue;
    }
    if (c?.clock.status !== 'advancing') continue;
    await enqueueClockStep(deps.dispatcher, c.clock);
    kicked += 1;
  }
  return kicked;
}
