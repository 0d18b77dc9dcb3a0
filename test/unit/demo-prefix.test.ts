/**
 * The demo's key prefix (src/demo/run-demo.ts): two demos started in the same second on one Redis
 * (two shells, or two CI tests) get different prefixes, so neither reads the other's batches nor
 * deletes the other's keys when it stops. CI once failed on exactly that: one demo exited and
 * removed `demo-payouts` while the other was still being asked for it.
 */
import { describe, expect, it } from 'vitest';
import { demoPrefix } from '../../src/demo/run-demo.ts';

describe('demoPrefix', () => {
  it('names the start second and differs between demos started in it', () => {
    const at = new Date('2026-12-02T16:05:09.123Z');
    const prefixes = new Set(Array.from({ length: 1_000 }, () => demoPrefix(at)));
    expect(prefixes.size).toBe(1_000);
    for (const p of prefixes) expect(p).toMatch(/^demo-20261202160509-[0-9a-f]{12}$/);
  });
});
