/** The identifiers of kernel/ids.ts the intent store hands to its Lua scripts. */
import { describe, expect, it } from 'vitest';
import {
  attemptReference,
  MAX_ATTEMPTS,
  parseAttemptReference,
  paymentEventId,
  type IntentKey,
} from '../../src/kernel/ids.ts';

const KEY = 'bat_b1_row-7' as IntentKey;

describe('attemptReference', () => {
  it('is `<intentKey>_<n>`, and parses back', () => {
    expect(attemptReference(KEY, 1)).toBe('bat_b1_row-7_1');
    expect(attemptReference(KEY, 12)).toBe('bat_b1_row-7_12');
    expect(parseAttemptReference(attemptReference(KEY, 12))).toEqual({ key: KEY, attempt: 12 });
  });

  it.each([0, -1, 1.5, MAX_ATTEMPTS + 1])('refuses attempt %s', (n) => {
    expect(() => attemptReference(KEY, n)).toThrow(RangeError);
  });
});

describe('paymentEventId', () => {
  it('is `evt_<intentKey>_<n>_<state>` (consumers de-duplicate on it)', () => {
    expect(paymentEventId(attemptReference(KEY, 1), 'succeeded')).toBe(
      'evt_bat_b1_row-7_1_succeeded',
    );
    expect(paymentEventId(attemptReference('sub_s_20250201' as IntentKey, 2), 'failed')).toBe(
      'evt_sub_s_20250201_2_failed',
    );
  });
});
