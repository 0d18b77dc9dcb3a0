/**
 * Intent keys of two batches cannot meet (docs/batches.md "Identity and idempotency"): a row's key
 * is `bat_<batchId>_<reference or line>`, and both parts may hold `_` in a reference, so a new
 * batch id may not (batch `pay` with reference `2024_1` and batch `pay_2024` with reference `1`
 * would share `bat_pay_2024_1`). Batches stored before that rule keep their ids: they stay
 * readable, and a row of a new batch whose key one of them already holds is refused loudly (an
 * invalid row naming the holder, out of the batch's counts and money), never silently dropped nor
 * adopted. Judged against real Redis, workers, the tracker and the sandbox ledger.
 */
import { PassThrough } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { approveBatch } from '../../src/batches/operations.ts';
import { batchResults } from '../../src/batches/results.ts';
import { batchStatus } from '../../src/batches/status.ts';
import { batchIntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { PayoutPayee } from '../../src/kernel/payment.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { uploadCsv, waitBatchCompleted } from '../support/batch-http.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration';

const PAYEE: PayoutPayee = {
  kind: 'payout',
  accountNumber: '0123456789',
  bankCode: '058',
  bankName: 'GTBank',
  accountName: 'Ada Obi',
  narration: 'old batch',
  paymentMode: 'bank',
};

let sandbox: Sandbox;
let t: TestApp;
beforeAll(async () => {
  sandbox = await startTestSandbox({ settleMs: 50 });
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['worker', 'api'] });
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

/**
 * A payout batch as a version before the rule stored it under an id with `_`: claimed, its rows
 * intents (amount 10.00 each), enqueued and paid.
 */
async function storeOldBatch(id: string, references: readonly string[]): Promise<void> {
  const now = Date.now();
  const amount = 1_000 as AmountMinor;
  await t.app.batches.claim(
    {
      id,
      type: 'payout',
      source: 'old.csv',
      contentHash: `old-${id}`,
      rows: references.length,
      valid: references.length,
      invalid: 0,
      skipInvalid: false,
      metaKeys: [],
      totals: {
        NGN: { rows: references.length, amount: (amount * references.length) as AmountMinor },
      },
    },
    'old-owner',
    now,
    30_000,
  );
  const intents = await t.app.store.createBatchRows({
    batchId: id,
    type: 'payout',
    rows: references.map((ref, i) => ({
      key: batchIntentKey(id, ref),
      line: i + 2,
      amount,
      currency: 'NGN',
      payee: JSON.stringify(PAYEE),
      meta: '',
    })),
    now,
  });
  await t.app.dispatcher.submitMany(intents);
  await t.app.batches.finishIngest(id, now);
  await waitBatchCompleted(t, id);
}

async function results(id: string): Promise<Record<string, string>[]> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  expect(await batchResults(t.app, id, out)).toBe(true);
  return parse<Record<string, string>>(Buffer.concat(chunks).toString('utf8'), { columns: true });
}

async function completedEvents(id: string) {
  const events = await t.app.events.read('-', 100_000);
  return events.filter((e) => e.type === 'batch.completed' && e.data.batchId === id);
}

describe('a new batch id with "_"', () => {
  it('is refused naming id, in process and over HTTP; nothing is stored', async () => {
    const csv = `${HEADER}\n1,0123456789,058,GTBank,Ada Obi,250.00,NGN,salary\n`;
    const r = await submitBatch(t.app, { input: csv, type: 'payout', id: 'new_2025' });
    expect(r.status).toBe('invalid');
    expect(r.message).toContain('id "new_2025" may contain only letters, digits and "-"');
    expect(await t.app.batches.get('new_2025')).toBeUndefined();

    const up = await uploadCsv(t, csv, 'type=payout&id=new_2026');
    expect(up.status, JSON.stringify(up.json)).toBe(422);
    expect((up.json.error as { message: string }).message).toContain('id "new_2026"');
    expect(await t.app.batches.get('new_2026')).toBeUndefined();
  });

  it('of a batch stored before the rule stays readable, and is that batch (conflict, not refused)', async () => {
    await storeOldBatch('legacy_1', ['a']);
    const res = await fetch(`${t.url}/batches/legacy_1`, {
      headers: { authorization: `Bearer ${TEST_API_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const csv = `${HEADER}\nb,0123456789,058,GTBank,Ada Obi,250.00,NGN,salary\n`;
    const r = await submitBatch(t.app, { input: csv, type: 'payout', id: 'legacy_1' });
    expect(r.status).toBe('conflict');
  });
});

describe('a row whose intent key another batch holds', () => {
  it('at ingest: refused as invalid naming the holder, never paid by this batch; the batch completes', async () => {
    // Stored before the rule: batch pay_2024, reference 1 → bat_pay_2024_1.
    await storeOldBatch('pay_2024', ['1']);
    expect(sandbox.ledger().activity['bat_pay_2024_1_1']?.moves).toBe(1);

    // A new batch `pay` whose reference 2024_1 makes the same key.
    const csv =
      `${HEADER},meta_employee,meta_note\n` +
      '2024_1,1111111111,044,Access,Bola Ade,250.00,NGN,salary,E-1,card 4111 1111 1111 1111\n' +
      '2024_2,2222222222,044,Access,Chi Eze,300.00,NGN,salary,E-2,\n';
    const r = await submitBatch(t.app, { input: csv, type: 'payout', id: 'pay' });
    expect(r.status).toBe('created');
    expect(r.totals).toMatchObject({ valid: 1, invalid: 1 });
    expect(r.errors).toEqual([
      {
        line: 2,
        message:
          'intent key bat_pay_2024_1 is already used by batch pay_2024 line 2; this row was not enqueued',
      },
    ]);

    const done = await waitBatchCompleted(t, 'pay');
    expect(done).toMatchObject({ valid: 1, invalid: 1 });
    expect(done.counts.succeeded).toBe(1);
    expect(done.totals.NGN?.amountMinor).toBe(30_000);
    expect(await completedEvents('pay')).toHaveLength(1);
    const rows = await results('pay');
    expect(rows.map((row) => [row.line, row.status])).toEqual([
      ['2', 'invalid'],
      ['3', 'succeeded'],
    ]);
    expect(rows[0]?.reason).toContain('batch pay_2024 line 2');
    // The refused row still shows its reference; never its account number.
    expect(rows[0]?.reference).toBe('2024_1');
    expect(Object.values(rows[0] ?? {})).not.toContain('1111111111');
    // And its meta values, a card number in them removed as everywhere.
    expect(rows[0]).toMatchObject({
      meta_employee: 'E-1',
      meta_note: 'card [card number removed]',
    });
    expect(JSON.stringify(rows)).not.toContain('4111');

    // The other batch's intent is untouched, and was paid once, by it.
    expect(await t.app.store.get('bat_pay_2024_1')).toMatchObject({
      batchId: 'pay_2024',
      amount: 1_000,
      state: 'succeeded',
    });
    expect(sandbox.ledger().activity['bat_pay_2024_1_1']?.submissions).toBe(1);
    expect(sandbox.ledger().activity['bat_pay_2024_1_1']?.moves).toBe(1);
    expect(await completedEvents('pay_2024')).toHaveLength(1);
  });

  it('at the release of a held batch: refused the same way', async () => {
    await storeOldBatch('hold_2024', ['7']);
    const csv = `${HEADER}\n2024_7,1111111111,044,Access,Bola Ade,250.00,NGN,held\n2024_8,2222222222,044,Access,Chi Eze,300.00,NGN,held\n`;
    const r = await submitBatch(t.app, {
      input: csv,
      type: 'payout',
      id: 'hold',
      approval: 'payouts',
      submittedBy: 'cli:alice',
    });
    expect(r.batch?.state).toBe('awaiting_approval');
    expect(await approveBatch(t.app, 'hold', 'cli:bob')).toMatchObject({ status: 'approved' });
    const done = await waitBatchCompleted(t, 'hold');
    expect(done).toMatchObject({ valid: 1, invalid: 1 });
    expect(done.counts.succeeded).toBe(1);
    expect((await results('hold'))[0]).toMatchObject({ line: '2', status: 'invalid' });
    expect(await t.app.store.get('bat_hold_2024_7')).toMatchObject({
      batchId: 'hold_2024',
      amount: 1_000,
    });
    expect(sandbox.ledger().activity['bat_hold_2024_7_1']?.submissions).toBe(1);
    expect((await batchStatus(t.app, 'hold'))?.state).toBe('completed');
  });
});
