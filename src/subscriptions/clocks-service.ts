/**
 * Test clock management (test mode only; test-clocks.ts), shared by HTTP (`/test-clocks`) and
 * the CLI (`billing subs clock …`): create a clock, read it, start advancing it, delete it. The caller checks
 * test mode (`SubscriptionServiceDeps.testMode`) before calling.
 */
import { randomBytes } from 'node:crypto';
import type { FieldIssue } from '../input/record.ts';
import { instantMs } from './calendar.ts';
import { enqueueClockStep } from './jobs.ts';
import { cancelOnDeletedClock } from './manage.ts';
import type { SubscriptionServiceDeps } from './service-deps.ts';
import { CLOCK_ID, newClock, startAdvance, type TestClock } from './test-clocks.ts';

/** The public view of a test clock. */
export interface TestClockView {
  id: string;
  object: 'test_clock';
  name: string | null;
  frozen_time: string;
  /** `advancing` until everything due up to `advancing_to` has run and settled, then `ready`. */
  status: TestClock['status'];
  advancing_to: string | null;
  created_at: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function toClockView(c: TestClock): TestClockView {
  return {
    id: c.id,
    object: 'test_clock',
    name: c.name ?? null,
    frozen_time: iso(c.frozenTime),
    status: c.status,
    advancing_to: c.advancingTo !== undefined ? iso(c.advancingTo) : null,
    created_at: iso(c.createdAt),
  };
}

/** Creates a clock at `frozenTime` (an instant `instantSchema` accepted). */
export async function createTestClock(
  deps: SubscriptionServiceDeps,
  frozenTime: string,
  name?: string,
): Promise<TestClock> {
  for (;;) {
    const clock = newClock(
      `clock_${randomBytes(12).toString('hex')}`,
      instantMs(frozenTime),
      deps.clock.now(),
      name,
    );
    if (await deps.subs.clocks.create(clock)) {
      deps.logger.info({ clock: clock.id, frozenTime: clock.frozenTime }, 'test clock created');
      return clock;
    }
  }
}

export async function getTestClock(
  deps: SubscriptionServiceDeps,
  id: string,
): Promise<TestClock | undefined> {
  if (!CLOCK_ID.test(id)) return undefined;
  const clock = (await deps.subs.clocks.get(id))?.clock;
  return clock?.deleting === true ? undefined : clock;
}

export type AdvanceResult =
  | { status: 'ok'; clock: TestClock }
  | { status: 'not_found' }
  | { status: 'advancing'; clock: TestClock }
  | { status: 'invalid'; issue: FieldIssue };

/**
 * Starts advancing the clock to `to` (after its time): stores the first step and enqueues it;
 * the scheduler role's `subscriptions` worker runs the chain (clock-runner.ts). A clock already
 * advancing is refused.
 */
export async function advanceTestClock(
  deps: SubscriptionServiceDeps,
  id: string,
  to: string,
): Promise<AdvanceResult> {
  const target = instantMs(to);
  for (let i = 0; i < 8; i++) {
    const found = CLOCK_ID.test(id) ? await deps.subs.clocks.get(id) : undefined;
    if (!found || found.clock.deleting === true) return { status: 'not_found' };
    const clock = found.clock;
    if (clock.status === 'advancing') return { status: 'advancing', clock };
    if (target <= clock.frozenTime)
      return {
        status: 'invalid',
        issue: {
          field: 'to',
          message: `to must be after the clock's time, ${iso(clock.frozenTime)}`,
        },
      };
    const next = startAdvance(clock, target);
    if ((await deps.subs.clocks.save(next, found.version)) === undefined) continue;
    await enqueueClockStep(deps.dispatcher, next);
    deps.logger.info({ clock: id, from: clock.frozenTime, to: target }, 'test clock advancing');
    return { status: 'ok', clock: next };
  }
  const current = await deps.subs.clocks.get(id);
  return current && current.clock.deleting !== true
    ? { status: 'advancing', clock: current.clock }
    : { status: 'not_found' };
}

export type DeleteClockResult =
  | { status: 'deleted'; id: string; canceled: string[] }
  | { status: 'not_found' }
  | { status: 'advancing'; clock: TestClock };

/**
 * Deletes a ready clock: marks it `deleting` (compare-and-set: refused if an advance started),
 * from when it is gone for every other caller (read, advance, a new subscription on it); cancels
 * each of its subscriptions at the clock's time (reason `test_clock_deleted`,
 * `subscription.canceled`); then deletes the clock and its indexes in one step that checks that
 * nothing changed meanwhile (its version; its member count: a create that read the clock before
 * the mark), else does it again. The subscriptions stay, canceled: their ids name charges that
 * exist, so they are never freed for another subscription. A call that dies partway leaves a
 * clock marked `deleting` (reads answer not found) with some subscriptions canceled; calling
 * again finishes. `canceled`: the subscriptions this call canceled.
 */
export async function deleteTestClock(
  deps: SubscriptionServiceDeps,
  id: string,
): Promise<DeleteClockResult> {
  const canceled: string[] = [];
  for (let i = 0; i < 8; i++) {
    const found = CLOCK_ID.test(id) ? await deps.subs.clocks.get(id) : undefined;
    if (!found) return i === 0 ? { status: 'not_found' } : { status: 'deleted', id, canceled };
    if (found.clock.status === 'advancing') return { status: 'advancing', clock: found.clock };
    let version = found.version;
    if (found.clock.deleting !== true) {
      const marked = await deps.subs.clocks.save({ ...found.clock, deleting: true }, version);
      if (marked === undefined) continue;
      version = marked;
    }
    const members = await deps.subs.clocks.members(id);
    for (const sub of members) {
      // No advance can start on a clock marked deleting: `advancing` is not expected here.
      const r = await cancelOnDeletedClock(deps, sub);
      if (r === 'canceled') canceled.push(sub);
    }
    const removed = await deps.subs.clocks.remove(id, version, members.length);
    if (removed === 'changed') continue;
    deps.logger.info(
      { clock: id, members: members.length, canceled: canceled.length },
      'test clock deleted',
    );
    return { status: 'deleted', id, canceled };
  }
  const current = await deps.subs.clocks.get(id);
  if (!current) return { status: 'deleted', id, canceled };
  if (current.clock.status === 'advancing') return { status: 'advancing', clock: current.clock };
  throw new Error(
    `test clock ${id} kept changing while it was being deleted (subscriptions created on it): delete it again`,
  );
}
