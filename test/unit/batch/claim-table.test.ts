import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClaimTable } from '../../../src/batches/claim-table.ts';

describe('ClaimTable', () => {
  it('answers like a Map<string, number> that keeps the first claim', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 12 }), fc.integer({ min: 1, max: 1_000_000 })), {
          maxLength: 400,
        }),
        (claims) => {
          const table = new ClaimTable(4);
          const model = new Map<string, number>();
          for (const [key, value] of claims) {
            const want = model.get(key);
            if (want === undefined) model.set(key, value);
            expect(table.claim(key, value)).toBe(want);
          }
          expect(table.size).toBe(model.size);
        },
      ),
    );
  });

  it('keeps 200,000 distinct references apart and finds every one again', () => {
    const table = new ClaimTable();
    let wrong = 0;
    for (let i = 1; i <= 200_000; i++) if (table.claim(`PAY-${i}`, i) !== undefined) wrong++;
    for (let i = 1; i <= 200_000; i++) if (table.claim(`PAY-${i}`, -1) !== i) wrong++;
    expect(wrong).toBe(0);
    expect(table.size).toBe(200_000);
  });

  it('keeps negative values (claims by line number) and refuses zero', () => {
    const table = new ClaimTable();
    expect(table.claim('12', -12)).toBeUndefined();
    expect(table.claim('12', 40)).toBe(-12);
    expect(() => table.claim('x', 0)).toThrow(RangeError);
    expect(() => table.claim('x', 2 ** 31)).toThrow(RangeError);
  });
});
