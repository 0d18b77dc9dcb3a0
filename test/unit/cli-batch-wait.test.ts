/**
 * `billing batch submit --wait` exits 3 when a row of the completed batch did not succeed
 * (README "CLI"): a row Sayswitch failed, one it reversed, and one left for a person
 * (`needs_review`: the gateway never said what happened) all count. A script reading exit 0 as
 * "every row paid" must not be told so while a payout waits for review.
 */
import { describe, expect, it } from 'vitest';
import { rowsNotSucceeded } from '../../src/cli/commands/batch.ts';
import { TRACKED_STATES, type TrackedState } from '../../src/batches/ports.ts';

const counts = (over: Partial<Record<TrackedState, number>>) => ({
  counts: {
    in_progress: 0,
    ...Object.fromEntries(TRACKED_STATES.map((s) => [s, 0])),
    ...over,
  } as Record<TrackedState | 'in_progress', number>,
});

describe('rows that did not succeed', () => {
  it.each([
    ['every row succeeded', { succeeded: 5 }, 0],
    ['a failed row', { succeeded: 4, failed: 1 }, 1],
    ['a reversed row', { succeeded: 4, reversed: 1 }, 1],
    ['a row left for review', { succeeded: 4, needs_review: 1 }, 1],
    ['one of each', { succeeded: 2, failed: 1, reversed: 1, needs_review: 1 }, 3],
  ])('%s', (_what, over, expected) => {
    expect(rowsNotSucceeded(counts(over))).toBe(expected);
  });
});
