/**
 * What the results file shows of a refused row (docs/batches.md "--skip-invalid"), against real
 * Redis: its reference (bounded when it is what was invalid) and its `meta_*` values, formula-
 * escaped, whether validation refused it or another batch held its reference; never its card
 * token, account number or any other cell. A row stored before these were kept (`{line,
 * message}`) still gives its line. No worker: nothing reaches a gateway.
 */
import { PassThrough } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { batchResults } from '../../src/batches/results.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';

/** Nothing here reaches the gateway (no worker runs). */
const GATEWAY_URL = 'http://127.0.0.1:9';
const PAN = '4111111111111111';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: GATEWAY_URL, roles: ['api'] });
});

afterAll(async () => {
  await t.close();
});

/** The results file as written (CSV text) and parsed, one record per row. */
async function resultsOf(id: string) {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  expect(await batchResults(t.app, id, out)).toBe(true);
  const text = Buffer.concat(chunks).toString('utf8');
  return { text, rows: parse<Record<string, string>>(text, { columns: true }) };
}

async function submitted(input: string, type: 'charge' | 'payout', id: string) {
  const r = await submitBatch(t.app, { input, type, id, skipInvalid: true });
  expect(r.status, r.message).toBe('created');
  return r;
}

const brief = (rows: Record<string, string>[]) =>
  rows.map((r) => [r.line, r.reference, r.status, r.meta_order, r.meta_note]);

describe('a row refused by validation', () => {
  it('shows its reference and meta values; a card token never', async () => {
    const long = 'L'.repeat(40);
    const csv = [
      'reference,email,amount,currency,card_token,meta_order,meta_note',
      'rf-ok,ada@example.com,10,NGN,tok_valid_0001,o-1,fine',
      'rf-amount,ada@example.com,0,NGN,tok_SECRET_0002,o-2,"=HYPERLINK(""http://x"")"',
      `${long},ada@example.com,10,NGN,tok_SECRET_0003,o-3,`,
      'bad ref!,ada@example.com,10,NGN,tok_SECRET_0004,o-4,+1',
      `rf-pan,ada@example.com,10,NGN,${PAN},o-5,`,
      'rf-email,not-an-email,10,NGN,tok_SECRET_0006,,',
    ].join('\n');
    const r = await submitted(csv, 'charge', 'refval');
    expect(r.totals).toMatchObject({ valid: 1, invalid: 5 });

    const { text, rows } = await resultsOf('refval');
    expect(brief(rows)).toEqual([
      ['2', 'rf-ok', 'queued', 'o-1', 'fine'],
      ['3', 'rf-amount', 'invalid', 'o-2', '\'=HYPERLINK("http://x")'],
      // The reference is the invalid field: at most 32 characters, then "…".
      ['4', `${'L'.repeat(32)}…`, 'invalid', 'o-3', ''],
      ['5', 'bad ref!', 'invalid', 'o-4', "'+1"],
      ['6', 'rf-pan', 'invalid', 'o-5', ''],
      ['7', 'rf-email', 'invalid', '', ''],
    ]);
    expect(rows[1]?.reason).toMatch(/^amount: /);
    expect(rows[2]?.reason).toMatch(/^reference: /);
    for (const row of rows.slice(1)) {
      expect([row.intent_key, row.amount, row.currency]).toEqual(['', '', '']);
    }
    expect(text).not.toContain('SECRET');
    expect(text).not.toContain(PAN.slice(0, 6));
    // Only the reason quotes a cell, as the error did (line 7's email).
    expect(text).not.toContain('ada@example.com');

    // The console lists them with their reference too.
    const page = await fetch(`${t.url}/console/batches/refval`, {
      headers: { authorization: `Bearer ${TEST_API_TOKEN}` },
    });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<td>rf-amount</td>');
    expect(html).not.toContain('SECRET');
  });

  it('of a payout file shows no account number', async () => {
    const csv = [
      'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,meta_order',
      'po-ok,0123456789,058,GTBank,Ada Obi,10,NGN,salary,o-1',
      'po-bad,9988776655,058,GTBank,Ada Obi,abc,NGN,salary,o-2',
    ].join('\n');
    await submitted(csv, 'payout', 'refpay');
    const { text, rows } = await resultsOf('refpay');
    expect(rows.map((r) => [r.line, r.reference, r.status, r.meta_order])).toEqual([
      ['2', 'po-ok', 'queued', 'o-1'],
      ['3', 'po-bad', 'invalid', 'o-2'],
    ]);
    expect(text).not.toContain('9988776655');
    expect(text).not.toContain('Ada Obi');
  });
});

describe('a row refused for a reference another batch holds', () => {
  it('shows that reference and its meta values', async () => {
    const header = 'reference,email,amount,currency,card_token,meta_order,meta_note';
    await submitted(
      `${header}\nheld-1,ada@example.com,10,NGN,tok_first_0001,a,\n`,
      'charge',
      'refh1',
    );
    const csv = [
      header,
      'new-1,ada@example.com,10,NGN,tok_second_0001,b,',
      'HELD-1,ada@example.com,12,NGN,tok_SECRET_0002,c,@note',
    ].join('\n');
    const r = await submitted(csv, 'charge', 'refh2');
    expect(r.totals).toMatchObject({ valid: 1, invalid: 1 });
    const { text, rows } = await resultsOf('refh2');
    expect(brief(rows)).toEqual([
      ['2', 'new-1', 'queued', 'b', ''],
      ['3', 'HELD-1', 'invalid', 'c', "'@note"],
    ]);
    expect(rows[1]?.reason).toContain('already used by charge batch refh1 line 2');
    expect(text).not.toContain('SECRET');
  });
});

describe('a refused row stored before references and meta were kept', () => {
  it('still gives a results line: line, status and reason', async () => {
    const csv = [
      'reference,email,amount,currency,card_token,meta_order,meta_note',
      'old-1,ada@example.com,10,NGN,tok_valid_0001,o-1,',
    ].join('\n');
    await submitted(csv, 'charge', 'refold');
    // The stored form of a refused row before: `{"line":…,"message":…}`.
    await t.app.batches.addInvalid('refold', [{ line: 3, message: 'amount: is required' }]);
    const stored = await t.app.batches.invalidRows('refold', 0, 10);
    expect(stored).toEqual([{ line: 3, message: 'amount: is required' }]);
    const { rows } = await resultsOf('refold');
    expect(rows.map((r) => [r.line, r.reference, r.status, r.reason, r.meta_order])).toEqual([
      ['2', 'old-1', 'queued', '', 'o-1'],
      ['3', '', 'invalid', 'amount: is required', ''],
    ]);
  });
});
