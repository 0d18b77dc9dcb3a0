/** The order a process starts its roles in (app/composition.ts `startOrder`). */
import { describe, expect, it } from 'vitest';
import { startOrder } from '../../src/app/composition.ts';

describe('startOrder', () => {
  it('starts the api role last, so /readyz is 200 only once the other roles run', () => {
    expect(startOrder(['api', 'worker'])).toEqual(['worker', 'api']);
    expect(startOrder(['reconciler', 'api', 'scheduler', 'worker'])).toEqual([
      'worker',
      'scheduler',
      'reconciler',
      'api',
    ]);
    expect(startOrder(['api'])).toEqual(['api']);
    expect(startOrder(['worker'])).toEqual(['worker']);
  });
});
