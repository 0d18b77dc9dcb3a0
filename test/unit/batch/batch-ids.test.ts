/**
 * Batch ids in intent keys (kernel/ids.ts, docs/batches.md "Identity and idempotency"): a new
 * batch id holds no `_`, so the first `_` after `bat_` ends the batch id and no two batches' keys
 * can meet; a retry's id is a new batch id too, even when the batch it retries was stored before
 * the rule with `_` in its id.
 */
import { describe, expect, it } from 'vitest';
import { newBatchIdSchema } from '../../../src/batches/ingest.ts';
import { retryBatchId } from '../../../src/batches/operations.ts';
import { BATCH_ID_MAX, batchIntentKey, isNewBatchId } from '../../../src/kernel/ids.ts';

describe('new batch ids', () => {
  it('refuse "_", naming id; letters, digits and "-" pass', () => {
    expect(isNewBatchId('pay-2024')).toBe(true);
    expect(isNewBatchId('pay_2024')).toBe(false);
    expect(newBatchIdSchema.safeParse('3f9a0c1d2e4b5a69').success).toBe(true);
    const refused = newBatchIdSchema.safeParse('pay_2024');
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toMatch(/^id "pay_2024" may contain only letters/);
  });

  it('the keys that collided before the rule come from one old id only', () => {
    // `pay` + `2024_1` and `pay_2024` + `1`: the second id can no longer name a new batch.
    expect(batchIntentKey('pay', '2024_1')).toBe(batchIntentKey('pay_2024', '1'));
    expect(isNewBatchId('pay_2024')).toBe(false);
  });
});

describe('retryBatchId', () => {
  it('counts on from the root, and hashes a root with "_" (a batch stored before the rule)', () => {
    expect(retryBatchId({ id: 'payroll' })).toBe('payroll-r1');
    expect(retryBatchId({ id: 'payroll-r1', retryOf: 'payroll' })).toBe('payroll-r2');
    const old = retryBatchId({ id: 'pay_2024' });
    expect(old).toMatch(/^[0-9a-f]{12}-r1$/);
    expect(retryBatchId({ id: old, retryOf: 'pay_2024' })).toBe(old.replace(/-r1$/, '-r2'));
    for (const id of [old, retryBatchId({ id: 'x'.repeat(BATCH_ID_MAX) })]) {
      expect(isNewBatchId(id)).toBe(true);
      expect(id.length).toBeLessThanOrEqual(BATCH_ID_MAX);
    }
  });
});
