import { describe, expect, it } from 'vitest';
import { readStatusWord } from '../../../src/infra/gateway/sayswitch/status.ts';

describe('readStatusWord: the one table the client and the webhook reader share', () => {
  it.each([
    ['success', 'succeeded'],
    ['successful', 'succeeded'],
    ['completed', 'succeeded'],
    ['failed', 'failed'],
    ['declined', 'failed'],
    ['cancelled', 'canceled'],
    ['canceled', 'canceled'],
    ['reversed', 'reversed'],
    ['pending', 'pending'],
    ['processing', 'pending'],
    // case and surrounding space are ignored
    ['  SUCCESS ', 'succeeded'],
    ['Cancelled', 'canceled'],
  ] as const)('%j → %s', (word, expected) => {
    expect(readStatusWord(word)).toBe(expected);
  });

  it.each([undefined, '', 'on_hold', 'succeeded', 'constructor', '__proto__', 'toString'])(
    '%j is not a known word',
    (word) => {
      expect(readStatusWord(word)).toBeUndefined();
    },
  );
});
