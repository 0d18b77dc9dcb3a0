/**
 * Refused rows in a batch's results file (batches/results.ts, docs/batches.md "Results"): a row
 * refused by validation, or for a reference another batch holds, shows its line, status `invalid`,
 * its reason, and the reference and meta values it kept — formula-escaped like every cell — and a
 * row stored before those were kept (`{line, message}`) still reads. The batch store is faked.
 */
import { PassThrough } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/infra/logger.ts';
import type { BatchRecord, InvalidRow } from '../../../src/batches/ports.ts';
import { batchResults, type BatchResultsDeps } from '../../../src/batches/results.ts';

const unused = () => Promise.reject(new Error('not used by the results file'));

/** A batch `b1` with no intent and `invalid` as its stored refused rows. */
function deps(invalid: InvalidRow[]): BatchResultsDeps {
  const batch = {
    id: 'b1',
    state: 'completed',
    skipInvalid: true,
    invalid: invalid.length,
    metaKeys: ['order', 'team'],
  } as unknown as BatchRecord;
  return {
    batches: {
      claim: unused,
      takeOver: unused,
      renew: unused,
      finishIngest: unused,
      get: (id) => Promise.resolve(id === 'b1' ? batch : undefined),
      addInvalid: unused,
      invalidRows: (_id, offset, limit) => Promise.resolve(invalid.slice(offset, offset + limit)),
      markReferencedLines: unused,
      referencedLines: unused,
      referenceHolders: unused,
      claimReferences: unused,
      intentFields: unused,
      applyEvents: unused,
      resyncRunning: unused,
      heldRows: unused,
    },
    store: { batchKeys: () => Promise.resolve([]) },
    logger: createLogger({ level: 'silent' }),
  };
}

async function results(invalid: InvalidRow[]): Promise<{ text: string; rows: string[][] }> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  expect(await batchResults(deps(invalid), 'b1', out)).toBe(true);
  const text = Buffer.concat(chunks).toString('utf8');
  return { text, rows: parse(text) };
}

describe('refused rows in the results file', () => {
  it('show the reference and meta values they kept, in their columns', async () => {
    const { rows } = await results([
      { line: 3, message: 'amount: is required', reference: 'pay-3', meta: { order: 'o-3' } },
      { line: 4, message: 'reference: too long', reference: `${'x'.repeat(32)}…` },
    ]);
    expect(rows).toEqual([
      [
        'line',
        'reference',
        'intent_key',
        'status',
        'amount',
        'currency',
        'gateway_reference',
        'fee',
        'reason',
        'updated_at',
        'meta_order',
        'meta_team',
      ],
      ['3', 'pay-3', '', 'invalid', '', '', '', '', 'amount: is required', '', 'o-3', ''],
      ['4', `${'x'.repeat(32)}…`, '', 'invalid', '', '', '', '', 'reference: too long', '', '', ''],
    ]);
  });

  it('escape a formula-like reference or meta value', async () => {
    const { rows } = await results([
      { line: 2, message: 'bad', reference: '-1', meta: { order: '=HYPERLINK("http://x")' } },
    ]);
    expect(rows[1]?.[1]).toBe("'-1");
    expect(rows[1]?.[10]).toBe('\'=HYPERLINK("http://x")');
  });

  it('stored in the old form {line, message} still give their line, status and reason', async () => {
    const { rows } = await results([{ line: 7, message: 'currency: bad' }]);
    expect(rows[1]).toEqual(['7', '', '', 'invalid', '', '', '', '', 'currency: bad', '', '', '']);
  });

  it('list a line stored twice (old form, then new form after an upgrade) once', async () => {
    const { rows } = await results([
      { line: 5, message: 'amount: bad' },
      { line: 5, message: 'amount: bad', reference: 'pay-5' },
      { line: 6, message: 'amount: bad', reference: 'pay-6' },
    ]);
    expect(rows.slice(1).map((r) => [r[0], r[1]])).toEqual([
      ['5', ''],
      ['6', 'pay-6'],
    ]);
  });
});
