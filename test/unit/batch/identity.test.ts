/**
 * Batch identity from content, not bytes (batches/identity.ts, issue 13): the same rows saved with
 * or without a BOM, with CRLF or LF, quoted or not, with or without a trailing newline, with the
 * columns in another order or the header in another case, read in any chunks, give one content
 * hash — the derived batch id; a changed value gives another.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContentIdentity, derivedBatchId } from '../../../src/batches/identity.ts';
import { validateCsv } from '../../../src/batches/validate-csv.ts';
import type { InstructionType } from '../../../src/kernel/intent.ts';

const COLUMNS = [
  'reference',
  'account_number',
  'bank_code',
  'bank_name',
  'account_name',
  'amount',
  'currency',
  'narration',
  'meta_tag',
] as const;

type Row = Record<(typeof COLUMNS)[number], string>;

/** How one file is saved. */
interface Encoding {
  bom: boolean;
  eol: '\n' | '\r\n';
  quoteAll: boolean;
  trailingNewline: boolean;
  /** Column order: a permutation of COLUMNS' indexes. */
  order: number[];
  upperHeader: boolean;
  /** Blank lines inserted after these data rows (indexes). */
  blankAfter: number[];
  /** Where the bytes are cut into chunks (fractions of the length). */
  cuts: number[];
}

const PLAIN: Encoding = {
  bom: false,
  eol: '\n',
  quoteAll: false,
  trailingNewline: true,
  order: COLUMNS.map((_, i) => i),
  upperHeader: false,
  blankAfter: [],
  cuts: [],
};

function field(value: string, quoteAll: boolean): string {
  return quoteAll || /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The rows as the bytes of a file saved with `enc`, in chunks. */
function encode(rows: readonly Row[], enc: Encoding): Buffer[] {
  const header = enc.order.map((i) => {
    const name = COLUMNS[i] ?? '';
    // Known column names are case-insensitive; a meta key keeps its case (the results echo it).
    const upper = enc.upperHeader && !name.startsWith('meta_');
    return field(upper ? name.toUpperCase() : name, enc.quoteAll);
  });
  const lines = [header.join(',')];
  rows.forEach((row, r) => {
    lines.push(enc.order.map((i) => field(row[COLUMNS[i]!], enc.quoteAll)).join(','));
    if (enc.blankAfter.includes(r)) lines.push('');
  });
  const text = lines.join(enc.eol) + (enc.trailingNewline ? enc.eol : '');
  const bytes = Buffer.concat([
    Buffer.from(enc.bom ? [0xef, 0xbb, 0xbf] : []),
    Buffer.from(text, 'utf8'),
  ]);
  const at = [...new Set(enc.cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of [...at, bytes.length]) {
    if (cut > start) chunks.push(bytes.subarray(start, cut));
    start = Math.max(start, cut);
  }
  return chunks;
}

async function hashOf(rows: readonly Row[], enc: Encoding, type: InstructionType = 'payout') {
  const result = await validateCsv(encode(rows, enc), { type });
  return result.contentHash;
}

const row = (i: number, over: Partial<Row> = {}): Row => ({
  reference: `pay-${String(i).padStart(4, '0')}`,
  account_number: '0123456789',
  bank_code: '058',
  bank_name: 'GTBank',
  account_name: 'Ada Obi',
  amount: `${100 + i}.00`,
  currency: 'NGN',
  narration: `salary, "March" ${i}`,
  meta_tag: `t${i}`,
  ...over,
});

/** Values that need quoting, keep inner whitespace, and are sometimes invalid (still content). */
const value = fc.string({
  unit: fc.constantFrom('a', 'Z', '0', '9', ' ', ',', '"', '\n', '-', '_', '.', 'é', '€'),
  maxLength: 12,
});
const rowArb: fc.Arbitrary<Row> = fc.record(
  Object.fromEntries(COLUMNS.map((c) => [c, value])) as Record<keyof Row, typeof value>,
);
/** Rows whose cells are not all blank (an all-blank row is no row: skipped by the reader). */
const rowsArb = fc.array(
  rowArb.filter((r) => Object.values(r).some((v) => v.trim() !== '')),
  { minLength: 1, maxLength: 6 },
);
const encodingArb: fc.Arbitrary<Encoding> = fc.record({
  bom: fc.boolean(),
  eol: fc.constantFrom('\n' as const, '\r\n' as const),
  quoteAll: fc.boolean(),
  trailingNewline: fc.boolean(),
  order: fc.shuffledSubarray(
    COLUMNS.map((_, i) => i),
    { minLength: COLUMNS.length, maxLength: COLUMNS.length },
  ),
  upperHeader: fc.boolean(),
  blankAfter: fc.array(fc.nat({ max: 5 }), { maxLength: 2 }),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
});

describe('batch identity: the same rows, however saved, are one batch', () => {
  it('LF, CRLF and BOM files of 50 payout rows have one content hash and batch id', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => row(i + 1));
    const lf = await hashOf(rows, PLAIN);
    const crlf = await hashOf(rows, { ...PLAIN, eol: '\r\n' });
    const bom = await hashOf(rows, { ...PLAIN, bom: true });
    expect(lf).toMatch(/^[0-9a-f]{64}$/);
    expect(crlf).toBe(lf);
    expect(bom).toBe(lf);
    expect(derivedBatchId(lf!)).toBe(lf!.slice(0, 16));
  });

  it('quoting, a missing trailing newline, column order, header case and blank lines', async () => {
    const rows = Array.from({ length: 5 }, (_, i) => row(i + 1));
    const lf = await hashOf(rows, PLAIN);
    const variants: Partial<Encoding>[] = [
      { quoteAll: true },
      { trailingNewline: false },
      { order: [...PLAIN.order].reverse() },
      { upperHeader: true },
      { blankAfter: [1, 3] },
      { bom: true, eol: '\r\n', quoteAll: true, trailingNewline: false, cuts: [0.001, 0.5] },
    ];
    for (const v of variants)
      expect(await hashOf(rows, { ...PLAIN, ...v }), JSON.stringify(v)).toBe(lf);
  });

  it('property: any two encodings of the same rows give the same hash', async () => {
    await fc.assert(
      fc.asyncProperty(rowsArb, encodingArb, encodingArb, async (rows, a, b) => {
        const ha = await hashOf(rows, a);
        expect(ha).toMatch(/^[0-9a-f]{64}$/);
        expect(await hashOf(rows, b)).toBe(ha);
      }),
      { numRuns: 150 },
    );
  });
});

describe('batch layout: the lines the rows are on', () => {
  const layoutOf = async (rows: readonly Row[], enc: Encoding) =>
    (await validateCsv(encode(rows, enc), { type: 'payout' })).layoutHash;

  it('a blank line keeps the content and batch id but changes the layout', async () => {
    const rows = Array.from({ length: 4 }, (_, i) => row(i + 1));
    const moved = { ...PLAIN, blankAfter: [1] };
    expect(await hashOf(rows, moved)).toBe(await hashOf(rows, PLAIN));
    expect(await layoutOf(rows, PLAIN)).toMatch(/^[0-9a-f]{64}$/);
    expect(await layoutOf(rows, moved)).not.toBe(await layoutOf(rows, PLAIN));
  });

  it('what does not move a row keeps the layout: CRLF, a BOM, quoting, column order', async () => {
    const rows = Array.from({ length: 4 }, (_, i) => row(i + 1));
    const plain = await layoutOf(rows, PLAIN);
    for (const v of [
      { eol: '\r\n' as const },
      { bom: true },
      { quoteAll: true },
      { order: [...PLAIN.order].reverse() },
    ])
      expect(await layoutOf(rows, { ...PLAIN, ...v }), JSON.stringify(v)).toBe(plain);
  });

  it('a file not read to its end has no layout', async () => {
    const broken = await validateCsv([`${COLUMNS.join(',')}\n"unclosed,1\n`], { type: 'payout' });
    expect(broken.layoutHash).toBeUndefined();
  });
});

describe('batch identity: different content is a different batch', () => {
  it('a value that differs by whitespace the parser keeps, or by its spelling', async () => {
    const rows = Array.from({ length: 3 }, (_, i) => row(i + 1));
    const base = await hashOf(rows, PLAIN);
    const changed = async (over: Partial<Row>) => hashOf([rows[0]!, row(2, over), rows[2]!], PLAIN);
    expect(await changed({ account_name: 'Ada  Obi' })).not.toBe(base);
    expect(await changed({ narration: `${rows[1]!.narration} ` })).not.toBe(base);
    expect(await changed({ amount: '102' })).not.toBe(base);
    expect(await changed({ meta_tag: 'T2' })).not.toBe(base);
    // Row order is content: the rows are paid and reported in file order.
    expect(await hashOf([rows[1]!, rows[0]!, rows[2]!], PLAIN)).not.toBe(base);
    // One row more or fewer.
    expect(await hashOf(rows.slice(0, 2), PLAIN)).not.toBe(base);
  });

  it('property: changing one value of one row changes the hash, in any encoding', async () => {
    await fc.assert(
      fc.asyncProperty(
        rowsArb,
        encodingArb,
        fc.nat(),
        fc.constantFrom(...COLUMNS),
        value,
        async (rows, enc, r, column, replacement) => {
          const i = r % rows.length;
          const target = rows[i]!;
          fc.pre(target[column] !== replacement);
          const other = rows.map((x, j) => (j === i ? { ...x, [column]: replacement } : x));
          fc.pre(Object.values(other[i]!).some((v) => v.trim() !== ''));
          expect(await hashOf(other, enc)).not.toBe(await hashOf(rows, PLAIN));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('the batch type, and a column more (even empty), are content', () => {
    const digest = (type: InstructionType, names: string[], rows: string[][]) => {
      const id = new ContentIdentity(type);
      id.header(names);
      rows.forEach((fields, i) => id.row(fields, i + 2));
      return id.digest();
    };
    const names = ['reference', 'amount', 'currency'];
    const rows = [['r1', '10', 'NGN']];
    expect(digest('payout', names, rows)).not.toBe(digest('charge', names, rows));
    expect(digest('payout', [...names, 'narration'], [['r1', '10', 'NGN', '']])).not.toBe(
      digest('payout', names, rows),
    );
    // A row whose field count does not match the header (kept by --skip-invalid) is content too,
    // and never mistaken for an aligned row.
    expect(digest('payout', names, [['r1', '10', 'NGN', '']])).not.toBe(
      digest('payout', names, rows),
    );
    expect(digest('payout', names, [['r1', '10,NGN']])).not.toBe(digest('payout', names, rows));
  });

  it('a file not read to its end has no content hash', async () => {
    const broken = await validateCsv([`${COLUMNS.join(',')}\n"unclosed,1\n`], { type: 'payout' });
    expect(broken.contentHash).toBeUndefined();
    const empty = await validateCsv([''], { type: 'payout' });
    expect(empty.contentHash).toBeUndefined();
  });
});
