/**
 * A batch claim the Redis client runs twice for one call (a resend after a lost reply): the second
 * run answers `created`, as the first did. Before, it answered `exists`: the submit took its own
 * fresh claim for another's, waited out the ingest lease, and the batch sat `ingesting` with no
 * rows meanwhile (a retry of failed rows answered "existing" and stayed so until asked again).
 * Real Redis, no worker (the rows stay queued).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { CLAIM_BATCH } from '../../src/batches/store/batch-lua.ts';
import { RedisBatchStore } from '../../src/batches/store/batch-store.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { resendingOnce } from '../support/resend.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
});
afterAll(async () => {
  await t?.close();
});

describe('a batch claim run twice by one submit', () => {
  it('creates the batch and ingests its rows at once', async () => {
    await CLAIM_BATCH.load(t.app.redis);
    const batches = new RedisBatchStore(resendingOnce(t.app.redis, CLAIM_BATCH), t.prefix);
    const input =
      'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n' +
      'cr-1,0123456789,058,GTBank,Ada Obi,100.00,NGN,resend\n' +
      'cr-2,0123456789,058,GTBank,Ada Obi,200.00,NGN,resend\n';
    const r = await submitBatch(
      { ...t.app, batches },
      { input, type: 'payout', id: 'claim-resend' },
    );
    expect(r.status).toBe('created');
    expect((await t.app.batches.get('claim-resend'))?.state).toBe('queued');
    expect(await t.app.store.batchKeys('claim-resend', 0, 10)).toHaveLength(2);
  });
});
