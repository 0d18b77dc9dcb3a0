/** Pins the intent transition table of payments/state-machine.ts (docs/product.md §5). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  INTENT_STATES,
  INTENT_TYPES,
  isSettled,
  type IntentState,
  type IntentType,
} from '../../src/kernel/intent.ts';
import { allowedFrom, canTransition } from '../../src/payments/state-machine.ts';

const CHARGE_TABLE: Record<IntentState, IntentState[]> = {
  queued: ['submitting', 'failed'],
  submitting: ['queued', 'pending', 'requires_action', 'unknown', 'succeeded', 'failed'],
  pending: ['succeeded', 'failed', 'needs_review'],
  requires_action: ['pending', 'succeeded', 'failed', 'needs_review'],
  unknown: ['queued', 'succeeded', 'failed', 'needs_review'],
  succeeded: [],
  failed: ['queued'],
  reversed: [],
  needs_review: ['succeeded', 'failed'],
};

const TABLE: Record<IntentType, Record<IntentState, IntentState[]>> = {
  charge: CHARGE_TABLE,
  // A refund follows the charge's table (docs/refunds.md): never reversed.
  refund: CHARGE_TABLE,
  payout: {
    queued: ['submitting', 'failed'],
    submitting: ['queued', 'pending', 'requires_action', 'unknown', 'succeeded', 'failed'],
    pending: ['succeeded', 'failed', 'needs_review'],
    requires_action: ['pending', 'succeeded', 'failed', 'needs_review'],
    unknown: ['queued', 'succeeded', 'failed', 'needs_review'],
    succeeded: ['reversed'],
    failed: ['queued'],
    reversed: [],
    needs_review: ['succeeded', 'failed'],
  },
};

describe('intent state machine', () => {
  it.each(INTENT_TYPES)('allows exactly the table for a %s', (type) => {
    for (const from of INTENT_STATES) {
      const next = INTENT_STATES.filter((to) => canTransition(from, to, type));
      expect(next, `${type} from ${from}`).toEqual(TABLE[type][from]);
    }
  });

  it.each(INTENT_TYPES)('allowedFrom(to) is the inverse of the table for a %s', (type) => {
    for (const to of INTENT_STATES) {
      const expected = INTENT_STATES.filter((from) => TABLE[type][from].includes(to));
      expect(allowedFrom(to, type), `${type} into ${to}`).toEqual(expected);
    }
  });

  it('requires_action is entered only from submitting and never goes back to queued', () => {
    for (const type of INTENT_TYPES) {
      expect(allowedFrom('requires_action', type)).toEqual(['submitting']);
      // The reference exists at the gateway: resubmitting it or starting over is never allowed.
      expect(canTransition('requires_action', 'queued', type)).toBe(false);
      expect(canTransition('requires_action', 'unknown', type)).toBe(false);
    }
  });

  it('a settled intent only moves to another settled state, or opens a new attempt', () => {
    for (const type of INTENT_TYPES) {
      for (const from of INTENT_STATES.filter(isSettled)) {
        for (const to of INTENT_STATES.filter((s) => canTransition(from, s, type))) {
          // failed → queued is the dunning retry: attempt n+1, never the failed attempt again.
          if (!isSettled(to)) expect([from, to]).toEqual(['failed', 'queued']);
        }
      }
    }
  });

  it('is the table of docs/product.md §5 (states a payout may move to)', () => {
    const doc = readFileSync(new URL('../../docs/product.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## 5.'), doc.indexOf('## 6.'));
    const documented: Partial<Record<IntentState, IntentState[]>> = {};
    for (const line of section.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      const state = /^`([a-z_]+)`$/.exec(cells[1] ?? '')?.[1] as IntentState | undefined;
      if (state === undefined || !INTENT_STATES.includes(state)) continue;
      const next = [...(cells[3] ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1] as IntentState);
      documented[state] = next.sort();
    }
    const code = Object.fromEntries(
      INTENT_STATES.map((from) => [
        from,
        INTENT_STATES.filter((to) => canTransition(from, to, 'payout')).sort(),
      ]),
    );
    expect(documented).toEqual(code);
  });
});
