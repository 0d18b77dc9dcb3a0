/**
 * The results of a batch held for approval (BATCH_APPROVAL, docs/batches.md "Results"): one line
 * per input row while it waits — its held rows with status `awaiting_approval`, its refused rows
 * `invalid` — and, once its rows became intents, each row once, as its intent. Real Redis, no
 * worker: nothing reaches a gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { approveBatch } from '../../src/batches/operations.ts';
import { createOwnIntents } from '../../src/batches/own-intents.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { batchResultRows } from '../support/batch-http.ts';

/** Nothing here reaches the gateway (no worker runs). */
const GATEWAY_URL = 'http://127.0.0.1:9';

const HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,meta_employee';

/**
 * Line 2: a reference; line 3: invalid (its amount); line 4: no reference (keyed by its line);
 * line 5: a reference equal to its own line number; line 6: a reference. References are unique
 * among payout batches, so each batch has its own (`<tag>1`, `<tag>6`) but for line 5's.
 */
function file(tag: string): string {
  return `${[
    HEADER,
    `${tag}1,0123456789,058,GTBank,Ada Obi,10.50,NGN,x,E-1`,
    `${tag}2,0123456789,058,GTBank,Ada Obi,abc,NGN,x,E-2`,
    ',0123456789,058,GTBank,Ada Obi,20,NGN,x,E-3',
    '5,0123456789,058,GTBank,Ada Obi,30,NGN,x,',
    `${tag}6,0123456789,058,GTBank,Ada Obi,40.05,NGN,x,E-6`,
  ].join('\n')}\n`;
}

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: GATEWAY_URL, roles: ['api'] });
});

afterAll(async () => {
  await t.close();
});

/** The columns a held or released row is judged by. */
function brief(rows: Record<string, string>[]) {
  return rows.map((r) => [r.line, r.reference, r.intent_key, r.status, r.amount, r.meta_employee]);
}

async function submitHeld(id: string) {
  const r = await submitBatch(t.app, {
    input: file(id),
    type: 'payout',
    id,
    skipInvalid: true,
    approval: 'all',
    // Line 5's reference is the same in both files: the second batch may pay it again.
    allowReusedReferences: true,
  });
  expect(r.status).toBe('created');
  expect(r.batch?.state).toBe('awaiting_approval');
}

describe('the results of a batch awaiting approval', () => {
  it('list every input row: held rows as awaiting_approval, in line order', async () => {
    await submitHeld('held-res');
    const rows = await batchResultRows(t, 'held-res');
    expect(brief(rows)).toEqual([
      ['2', 'held-res1', 'bat_held-res_held-res1', 'awaiting_approval', '10.50', 'E-1'],
      ['3', 'held-res2', '', 'invalid', '', 'E-2'],
      ['4', '', 'bat_held-res_4', 'awaiting_approval', '20', 'E-3'],
      ['5', '5', 'bat_held-res_5', 'awaiting_approval', '30', ''],
      ['6', 'held-res6', 'bat_held-res_held-res6', 'awaiting_approval', '40.05', 'E-6'],
    ]);
    expect(rows[1]?.reason).toMatch(/^amount: /);
    expect(rows.every((r) => r.currency === (r.status === 'invalid' ? '' : 'NGN'))).toBe(true);
  });

  it('list each row once while a release is under way, and as its intent once approved', async () => {
    await submitHeld('held-rel');
    // An approval that made the first held rows intents and stopped before the batch left
    // awaiting_approval: those rows are listed once, as their intents.
    const held = await t.app.batches.heldRows('held-rel', 0, 2);
    await createOwnIntents(t.app, { batchId: 'held-rel', type: 'payout', rows: held });
    expect((await t.app.batches.get('held-rel'))?.state).toBe('awaiting_approval');
    const midway = await batchResultRows(t, 'held-rel');
    expect(midway.map((r) => [r.line, r.status])).toEqual([
      ['2', 'queued'],
      ['3', 'invalid'],
      ['4', 'queued'],
      ['5', 'awaiting_approval'],
      ['6', 'awaiting_approval'],
    ]);

    const approved = await approveBatch(t.app, 'held-rel', 'cli:approver');
    expect(approved).toMatchObject({ status: 'approved' });
    const rows = await batchResultRows(t, 'held-rel');
    expect(brief(rows)).toEqual([
      ['2', 'held-rel1', 'bat_held-rel_held-rel1', 'queued', '10.50', 'E-1'],
      ['3', 'held-rel2', '', 'invalid', '', 'E-2'],
      ['4', '', 'bat_held-rel_4', 'queued', '20', 'E-3'],
      ['5', '5', 'bat_held-rel_5', 'queued', '30', ''],
      ['6', 'held-rel6', 'bat_held-rel_held-rel6', 'queued', '40.05', 'E-6'],
    ]);
  });
});
