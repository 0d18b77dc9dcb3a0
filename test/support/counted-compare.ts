/**
 * `node:crypto` with its `timingSafeEqual` counted (still the real one), for the tests that check
 * every key is compared whichever matches. A test file mocks with it, then reads `compared`:
 *
 *   vi.mock('node:crypto', async (original) =>
 *     (await import('../support/counted-compare.ts')).countingCompares(await original()));
 *   import { compared } from '../support/counted-compare.ts';
 */
import type * as NodeCrypto from 'node:crypto';

/** How many times timingSafeEqual ran since a test last set `calls` to 0. */
export const compared = { calls: 0 };

export function countingCompares(actual: typeof NodeCrypto): typeof NodeCrypto {
  return {
    ...actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared.calls++;
      return actual.timingSafeEqual(a, b);
    },
  };
}
