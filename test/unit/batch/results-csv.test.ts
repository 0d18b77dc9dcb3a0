import { PassThrough } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { amountMinor } from '../../../src/kernel/money.ts';
import {
  escapeFormula,
  resultCells,
  resultsCsvColumns,
  writeResultsCsv,
  type ResultRow,
} from '../../../src/batches/results-csv.ts';

async function render(
  rows: ResultRow[],
  metaKeys: string[],
  options: { bom?: boolean } = {},
): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  await writeResultsCsv(rows, out, metaKeys, options);
  return Buffer.concat(chunks).toString('utf8');
}

const succeeded: ResultRow = {
  line: 2,
  reference: 'inv-001',
  intentKey: 'bat_b1_inv-001',
  status: 'succeeded',
  amount: amountMinor(150050),
  currency: 'NGN',
  gatewayReference: 'SSW_123',
  fee: amountMinor(2250),
  reason: undefined,
  updatedAt: new Date('2025-03-01T10:00:00.000Z'),
  meta: { region: 'Lagos', customer_id: 'c-42' },
};

describe('escapeFormula', () => {
  it.each([
    ['=SUM(A1:A9)', "'=SUM(A1:A9)"],
    ['+2348012345678', "'+2348012345678"],
    ['-10', "'-10"],
    ['@cmd', "'@cmd"],
    ['\tleading tab', "'\tleading tab"],
    ['\rleading CR', "'\rleading CR"],
    ['plain', 'plain'],
    ['', ''],
    ['a=b', 'a=b'],
    [' =1', ' =1'],
    ["'already", "'already"],
    ['1500.50', '1500.50'],
  ])('%j → %j', (cell, expected) => {
    expect(escapeFormula(cell)).toBe(expected);
  });
});

describe('resultsCsvColumns', () => {
  it('lists the fixed columns in docs/product.md §6.3 order, then meta_ columns in input order', () => {
    expect(resultsCsvColumns(['region', 'customer_id'])).toEqual([
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
      'meta_region',
      'meta_customer_id',
    ]);
  });
});

describe('writeResultsCsv', () => {
  it('writes a header and one line per row, amounts in major units', async () => {
    const text = await render(
      [
        succeeded,
        {
          line: 3,
          intentKey: 'bat_b1_3',
          status: 'failed',
          amount: amountMinor(100051),
          currency: 'NGN',
          reason: 'declined',
          updatedAt: '2025-03-01T10:00:01.000Z',
          meta: { region: 'Abuja', customer_id: 'c-43' },
        },
      ],
      ['region', 'customer_id'],
    );
    expect(text).toBe(
      'line,reference,intent_key,status,amount,currency,gateway_reference,fee,reason,updated_at,meta_region,meta_customer_id\r\n' +
        '2,inv-001,bat_b1_inv-001,succeeded,1500.50,NGN,SSW_123,22.50,,2025-03-01T10:00:00.000Z,Lagos,c-42\r\n' +
        '3,,bat_b1_3,failed,1000.51,NGN,,,declined,2025-03-01T10:00:01.000Z,Abuja,c-43\r\n',
    );
  });

  it('echoes meta values in header order, blank when a row lacks one', async () => {
    const text = await render(
      [{ ...succeeded, meta: { customer_id: 'c-42', extra: 'ignored' } }],
      ['region', 'customer_id'],
    );
    const [header, row] = parse(text);
    expect(header?.slice(-2)).toEqual(['meta_region', 'meta_customer_id']);
    expect(row?.slice(-2)).toEqual(['', 'c-42']);
  });

  it('escapes formulas in every cell and quotes commas, quotes and line breaks', async () => {
    const text = await render(
      [
        {
          line: 4,
          status: 'invalid',
          reason: '=HYPERLINK("http://x")',
          meta: { note: 'a,b\nc', name: '@evil', phone: '+233245690993', quote: 'say "hi"' },
        },
      ],
      ['note', 'name', 'phone', 'quote'],
    );
    const [, row] = parse(text);
    expect(row).toEqual([
      '4',
      '',
      '',
      'invalid',
      '',
      '',
      '',
      '',
      `'=HYPERLINK("http://x")`,
      '',
      'a,b\nc',
      "'@evil",
      "'+233245690993",
      'say "hi"',
    ]);
    // A lone line break inside a cell is quoted, so the file keeps one line per row.
    expect(text).toContain('"a,b\nc"');
  });

  it('can prepend a BOM for spreadsheets', async () => {
    const text = await render([succeeded], [], { bom: true });
    expect(text.startsWith('\ufeffline,')).toBe(true);
  });

  it('writes only the header for an empty batch', async () => {
    expect(await render([], ['region'])).toBe(
      'line,reference,intent_key,status,amount,currency,gateway_reference,fee,reason,updated_at,meta_region\r\n',
    );
  });
});

describe('resultCells', () => {
  it('returns the cells in column order', () => {
    expect(resultCells(succeeded, ['customer_id'])).toEqual([
      '2',
      'inv-001',
      'bat_b1_inv-001',
      'succeeded',
      '1500.50',
      'NGN',
      'SSW_123',
      '22.50',
      '',
      '2025-03-01T10:00:00.000Z',
      'c-42',
    ]);
  });
});
