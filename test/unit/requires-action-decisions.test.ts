/**
 * The requires_action decisions of payments/decisions.ts: a challenged payment waits for its
 * window (REQUIRES_ACTION_WINDOW), is checked when it ends, and is never failed by inference.
 */
import { describe, expect, it } from 'vitest';
import {
  afterWaitingAnswer,
  failureReasonFor,
  nextCheckFor,
  stateForOutcome,
} from '../../src/payments/decisions.ts';

const UNTIL = 100_000;
const challenged = { state: 'requires_action' as const, requiresActionUntil: UNTIL };

describe('a waiting answer (pending or requires_action)', () => {
  it('a challenge answer to a submission enters requires_action', () => {
    expect(stateForOutcome({ status: 'requires_action', reference: 'r' })).toBe('requires_action');
    expect(afterWaitingAnswer({ state: 'submitting' }, 'requires_action', 0)).toEqual({
      move: 'requires_action',
    });
    expect(afterWaitingAnswer({ state: 'submitting' }, 'pending', 0)).toEqual({ move: 'pending' });
  });

  it('within the window, pending is no news: awaiting and settling verify alike', () => {
    expect(afterWaitingAnswer(challenged, 'pending', UNTIL - 1)).toEqual({ move: undefined });
    expect(afterWaitingAnswer(challenged, 'requires_action', UNTIL - 1)).toEqual({
      move: undefined,
    });
  });

  it('after the window, still pending: an ordinary pending payment (not failed)', () => {
    expect(afterWaitingAnswer(challenged, 'pending', UNTIL)).toEqual({
      move: 'pending',
      why: 'requires_action_window_passed',
    });
    // The gateway explicitly still waits for the customer: keep waiting (checks, then review).
    expect(afterWaitingAnswer(challenged, 'requires_action', UNTIL + 1)).toEqual({
      move: undefined,
    });
  });

  it('unknown, pending and needs_review keep their state', () => {
    for (const state of ['unknown', 'pending', 'needs_review'] as const) {
      for (const answer of ['pending', 'requires_action'] as const) {
        expect(afterWaitingAnswer({ state }, answer, 1e12)).toEqual({ move: undefined });
      }
    }
  });
});

describe('the failure reason', () => {
  it('a generic decline of a challenged payment is authentication_required', () => {
    expect(failureReasonFor(challenged, 'declined')).toBe('authentication_required');
    expect(failureReasonFor(challenged, 'insufficient_funds')).toBe('insufficient_funds');
    expect(failureReasonFor(challenged, 'canceled')).toBe('canceled');
    expect(failureReasonFor(challenged, 'authentication_required')).toBe('authentication_required');
  });

  it("is the gateway's own in any other state", () => {
    for (const state of ['submitting', 'pending', 'unknown', 'needs_review'] as const) {
      expect(failureReasonFor({ state }, 'declined')).toBe('declined');
    }
  });
});

describe('when a challenged payment is checked next', () => {
  const schedule = [10_000, 20_000];

  it('on the schedule, and no later than the end of its window', () => {
    expect(nextCheckFor(challenged, 0, 0, schedule)).toBe(10_000);
    expect(nextCheckFor(challenged, 95_000, 0, schedule)).toBe(UNTIL);
  });

  it('a schedule exhausted before the window ends does not end it: the window end is next', () => {
    expect(nextCheckFor(challenged, 50_000, 2, schedule)).toBe(UNTIL);
  });

  it('after the window, as any other payment: exhausted → undefined (needs_review)', () => {
    expect(nextCheckFor(challenged, UNTIL, 1, schedule)).toBe(UNTIL + 20_000);
    expect(nextCheckFor(challenged, UNTIL, 2, schedule)).toBeUndefined();
    expect(nextCheckFor({ state: 'pending' }, 0, 2, schedule)).toBeUndefined();
  });
});
