/**
 * The shared streaming CSV reader: records with the physical line they start on, blank records
 * skipped, and the one problem that ends a file (broken quotes, UTF-16, invalid UTF-8, an
 * over-long line). The batch validator's tests cover the same framing through validateCsv.
 */
import { describe, expect, it } from 'vitest';
import {
  fatalError,
  fieldCountIssue,
  oversizedFields,
  readCsvRecords,
  type CsvFatal,
  type CsvInput,
  type CsvReaderOptions,
  type CsvRecord,
} from '../../../src/input/csv-reader.ts';
import type { RowIssue } from '../../../src/input/record.ts';

async function read(
  input: CsvInput,
  options?: CsvReaderOptions,
): Promise<{ records: CsvRecord[]; fatal: CsvFatal | undefined }> {
  const records: CsvRecord[] = [];
  const reader = readCsvRecords(input, options);
  for (;;) {
    const step = await reader.next();
    if (step.done === true) return { records, fatal: step.value };
    records.push(...step.value);
  }
}

describe('readCsvRecords', () => {
  it('numbers records by the physical line they start on, skipping blank ones', async () => {
    const text =
      '\ufeffa,b\r\n' + // BOM: not a character of the header
      '1,"x\r\ny"\r\n' + // a quoted CRLF: one record over lines 2-3
      '\r\n' +
      ' , \n' + // a row of empty cells
      '2,z\n';
    const { records, fatal } = await read(text);
    expect(fatal).toBeUndefined();
    expect(records).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', 'x\r\ny'] },
      { line: 6, fields: ['2', 'z'] },
    ]);
  });

  it('reads chunks split inside a multi-byte character and a CRLF', async () => {
    const bytes = Buffer.from('name,city\nAda,Café\r\nBola,Lagos\n');
    const cuts = [bytes.indexOf(Buffer.from('é')) + 1, bytes.indexOf(0x0d) + 1];
    const chunks = [
      bytes.subarray(0, cuts[0]),
      bytes.subarray(cuts[0], cuts[1]),
      bytes.subarray(cuts[1]),
    ];
    const { records, fatal } = await read(chunks);
    expect(fatal).toBeUndefined();
    expect(records.map((r) => [r.line, r.fields[1]])).toEqual([
      [1, 'city'],
      [2, 'Café'],
      [3, 'Lagos'],
    ]);
  });

  it('ends at an unclosed quote, after yielding every record before it', async () => {
    const { records, fatal } = await read('a,b\n1,2\n3,"open\n4,5\n');
    expect(records.map((r) => r.line)).toEqual([1, 2]);
    expect(fatal).toMatchObject({ line: 3, message: expect.stringMatching(/never closed/) });
  });

  it('names the field the parser stopped in, once a header gives it a name', async () => {
    const { fatal } = await read('a,b\n1,x"y"\n');
    expect(fatal).toMatchObject({ line: 2, field: 1 });
    expect(fatalError(fatal!, ['a', 'b'])).toEqual({
      line: 2,
      column: 'b',
      message: expect.stringMatching(/^unbalanced quotes/),
    });
    expect(fatalError(fatal!)).not.toHaveProperty('column');
  });

  it('refuses UTF-16, invalid UTF-8 and over-long lines at their line', async () => {
    const utf16 = Buffer.from('\ufeffa,b\n', 'utf16le');
    expect((await read(utf16)).fatal).toEqual({
      line: 1,
      message: 'the file is UTF-16; save it as UTF-8 (CSV UTF-8)',
    });
    const latin1 = Buffer.concat([
      Buffer.from('a,b\n1,2\n'),
      Buffer.from([0x63, 0x61, 0x66, 0xe9]),
      Buffer.from(',3\n'),
    ]);
    const bad = await read(latin1);
    expect(bad.records.map((r) => r.line)).toEqual([1, 2]);
    expect(bad.fatal).toEqual({
      line: 3,
      message: 'line is not valid UTF-8; save the file as UTF-8 (CSV UTF-8)',
    });
    const long = await read(`a,b\n1,${'x'.repeat(100)}\n`, { maxLineBytes: 50 });
    expect(long.fatal).toEqual({ line: 2, message: 'line is longer than 50 bytes' });
    await expect(read('a\n', { maxLineBytes: 0 })).rejects.toThrow(RangeError);
  });
});

describe('record checks against a header', () => {
  it('names the first missing column of a short row, and suspects a comma in a long one', () => {
    expect(fieldCountIssue(['1', '2'], ['a', 'b'])).toBeUndefined();
    expect(fieldCountIssue(['1'], ['a', 'b'])).toEqual({
      column: 'b',
      message: 'row has 1 fields but the header has 2',
    });
    expect(fieldCountIssue(['1', '2', '3'], ['a', 'b'])).toEqual({
      message: 'row has 3 fields but the header has 2 (an unquoted comma in a value?)',
    });
  });

  it('counts field sizes in UTF-8 bytes and reports each oversized field once', () => {
    const issues: RowIssue[] = [];
    const oversized = oversizedFields(
      ['é'.repeat(6), 'e'.repeat(10), 'ok'],
      ['a', 'b'],
      10,
      issues,
    );
    expect([...(oversized ?? [])]).toEqual([0]);
    expect(issues).toEqual([{ column: 'a', message: 'field is longer than 10 bytes' }]);
    expect(oversizedFields(['x'], ['a'], 10, issues)).toBeUndefined();
  });
});
