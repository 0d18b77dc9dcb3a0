/**
 * Pins the two meanings of "done" of kernel/intent.ts and everything built from them: the batch
 * store and its Lua count rows with SETTLED_STATES, and the demo waits for them.
 */
import { describe, expect, it } from 'vitest';
import { paymentEventFor } from '../../src/kernel/events.ts';
import { FINAL_STATES, INTENT_STATES, isSettled, SETTLED_STATES } from '../../src/kernel/intent.ts';
import { APPLY_EVENTS } from '../../src/batches/store/batch-lua.ts';
import { BATCH_FINAL_STATES, TRACKED_STATES } from '../../src/batches/store/batch-store.ts';

/** The keys of the `local FINAL = { a = true, … }` table of a Lua script. */
function luaFinalSet(body: string): string[] {
  const table = /^local FINAL = \{([^}]*)\}$/m.exec(body)?.[1];
  if (table === undefined) throw new Error('no FINAL table in the script');
  return table
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const m = /^([a-z_]+) = true$/.exec(entry);
      if (!m?.[1]) throw new Error(`unexpected FINAL entry: ${entry}`);
      return m[1];
    });
}

describe('final and settled intent states', () => {
  it('final: the gateway answered the money question', () => {
    expect([...FINAL_STATES]).toEqual(['succeeded', 'failed', 'reversed']);
  });

  it('settled: final, or handed to a person', () => {
    expect([...SETTLED_STATES]).toEqual([...FINAL_STATES, 'needs_review']);
    expect(INTENT_STATES.filter(isSettled)).toEqual([
      'succeeded',
      'failed',
      'reversed',
      'needs_review',
    ]);
    expect(INTENT_STATES.filter((s) => !isSettled(s))).toEqual([
      'queued',
      'submitting',
      'pending',
      'requires_action',
      'unknown',
    ]);
  });

  it('the batch store counts a row final exactly in the settled states', () => {
    expect(BATCH_FINAL_STATES).toEqual(SETTLED_STATES);
  });

  it("the batch tracker's Lua FINAL set is SETTLED_STATES", () => {
    expect(luaFinalSet(APPLY_EVENTS.body).sort()).toEqual([...SETTLED_STATES].sort());
  });

  it('requires_action publishes payment.requires_action, which the batch tracker counts', () => {
    expect(paymentEventFor('requires_action')).toBe('payment.requires_action');
    expect(TRACKED_STATES as readonly string[]).toContain('requires_action');
    expect(isSettled('requires_action')).toBe(false);
  });

  it('every settled state publishes a payment event the batch tracker counts', () => {
    // The tracker only sees transitions through their events: a settled state without one would
    // leave its batch queued forever.
    for (const state of SETTLED_STATES) {
      expect(paymentEventFor(state), state).toBe(`payment.${state}`);
      expect(TRACKED_STATES as readonly string[]).toContain(state);
    }
  });
});
