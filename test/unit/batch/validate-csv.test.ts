import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMajor, amountMinor } from '../../../src/kernel/money.ts';
import {
  formatCsvError,
  validateCsv,
  validateCsvStream,
  type CsvError,
  type ValidateCsvOptions,
} from '../../../src/batches/validate-csv.ts';
import type { InstructionType } from '../../../src/kernel/intent.ts';
import { parseSubscriptionsCsv } from '../../../src/subscriptions/import.ts';

const CHARGE_HEADER = 'reference,email,amount,currency,card_token,narration';
const PAYOUT_HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,payment_mode';
const TOKEN = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

function csv(...lines: string[]): string {
  return lines.join('\n') + '\n';
}

async function check<T extends InstructionType>(
  input: string | Buffer | (string | Buffer)[],
  options: ValidateCsvOptions<T>,
) {
  return validateCsv(Array.isArray(input) ? input : [input], options);
}

function only(errors: CsvError[]): CsvError {
  expect(errors).toHaveLength(1);
  return errors[0]!;
}

describe('validateCsv: happy paths', () => {
  it('reads a charge file into typed rows', async () => {
    const result = await check(
      csv(
        CHARGE_HEADER,
        `inv-001,ada@example.com,1500,NGN,${TOKEN},March plan`,
        `,bola@example.com,1500.5,USD,${TOKEN},`,
        `INV_3,chi@example.co.uk,0.01,GBP,${TOKEN},x`,
      ),
      { type: 'charge' },
    );
    expect(result.errors).toEqual([]);
    expect(result.totals).toEqual({ rows: 3, valid: 3, invalid: 0 });
    expect(result.rows).toEqual([
      {
        line: 2,
        reference: 'inv-001',
        email: 'ada@example.com',
        amount: 150000,
        currency: 'NGN',
        cardToken: TOKEN,
        narration: 'March plan',
        meta: {},
      },
      {
        line: 3,
        reference: undefined,
        email: 'bola@example.com',
        amount: 150050,
        currency: 'USD',
        cardToken: TOKEN,
        narration: undefined,
        meta: {},
      },
      {
        line: 4,
        reference: 'INV_3',
        email: 'chi@example.co.uk',
        amount: 1,
        currency: 'GBP',
        cardToken: TOKEN,
        narration: 'x',
        meta: {},
      },
    ]);
  });

  it('reads a payout file, defaulting payment_mode to bank', async () => {
    const result = await check(
      csv(
        PAYOUT_HEADER,
        'sal-1,0123456789,058,GTBank,"Okafor, Ada",250000.75,NGN,March salary,',
        'sal-2,233245690993,MTNGH,MTN Ghana,Kwame Mensah,120,GHS,March salary,momo',
        'sal-3,254712345678,MPESA,M-Pesa,Wanjiru Kamau,1000,KES,March salary,momo',
      ),
      { type: 'payout' },
    );
    expect(result.errors).toEqual([]);
    expect(result.rows[0]).toEqual({
      line: 2,
      reference: 'sal-1',
      accountNumber: '0123456789',
      bankCode: '058',
      bankName: 'GTBank',
      accountName: 'Okafor, Ada',
      amount: 25000075,
      currency: 'NGN',
      narration: 'March salary',
      paymentMode: 'bank',
      meta: {},
    });
    expect(result.rows.map((r) => [r.line, r.currency, r.paymentMode])).toEqual([
      [2, 'NGN', 'bank'],
      [3, 'GHS', 'momo'],
      [4, 'KES', 'momo'],
    ]);
  });

  it('accepts a payout file without a payment_mode column when every row is NGN', async () => {
    const result = await check(
      csv(
        'account_number,bank_code,bank_name,account_name,amount,currency,narration',
        '0123456789,058,GTBank,Ada,10,NGN,x',
      ),
      { type: 'payout' },
    );
    expect(result.errors).toEqual([]);
    expect(result.rows[0]?.paymentMode).toBe('bank');
  });

  it('accepts a UTF-8 BOM and does not count it against line 1', async () => {
    const result = await check(
      Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(csv(CHARGE_HEADER, `r1,ada@example.com,10,NGN,${TOKEN},Adébáyọ̀`)),
      ]),
      { type: 'charge' },
    );
    expect(result.errors).toEqual([]);
    expect(result.rows[0]).toMatchObject({ line: 2, reference: 'r1', narration: 'Adébáyọ̀' });
  });

  it('matches column names case-insensitively and ignores their surrounding spaces', async () => {
    const result = await check(
      csv(' Email ,AMOUNT,Currency,CARD_TOKEN', `ada@example.com,10,EUR,${TOKEN}`),
      { type: 'charge' },
    );
    expect(result.errors).toEqual([]);
    expect(result.rows[0]).toMatchObject({
      email: 'ada@example.com',
      amount: 1000,
      currency: 'EUR',
    });
  });

  it('keeps meta_ columns in header order, keyed without the prefix', async () => {
    const result = await check(
      csv(
        `META_Region,email,amount,currency,card_token,meta_customer_id`,
        `Lagos,ada@example.com,10,NGN,${TOKEN},c-42`,
        `,bola@example.com,10,NGN,${TOKEN},"=1+2, with comma"`,
      ),
      { type: 'charge' },
    );
    expect(result.errors).toEqual([]);
    expect(result.metaKeys).toEqual(['Region', 'customer_id']);
    expect(result.rows[0]?.meta).toEqual({ Region: 'Lagos', customer_id: 'c-42' });
    expect(result.rows[1]?.meta).toEqual({ Region: '', customer_id: '=1+2, with comma' });
  });

  it('reads RFC 4180 quoting: commas, doubled quotes and line breaks inside fields', async () => {
    const result = await check(
      csv(
        'email,amount,currency,card_token,narration,meta_note',
        `ada@example.com,10,NGN,${TOKEN},"Rent, March","He said ""paid"""`,
        `bola@example.com,"20",NGN,${TOKEN},x,"line one`,
        `line two`,
        `line three"`,
        `chi@example.com,30,NGN,${TOKEN},y,z`,
      ),
      { type: 'charge' },
    );
    expect(result.errors).toEqual([]);
    expect(result.rows.map((r) => r.line)).toEqual([2, 3, 6]);
    expect(result.rows[0]).toMatchObject({
      narration: 'Rent, March',
      meta: { note: 'He said "paid"' },
    });
    expect(result.rows[1]?.meta.note).toBe('line one\nline two\nline three');
  });

  it('reports the line where a record starts, after multi-line fields, CRLF line ends and blank lines', async () => {
    // Physical lines: 1 header, 2-3 first record (CRLF inside the quotes), 4 blank, 5 bad record.
    const text =
      'email,amount,currency,card_token,meta_note\r\n' +
      `ada@example.com,10,NGN,${TOKEN},"a\r\nb"\r\n` +
      '\r\n' +
      `bola@example.com,1.234,NGN,${TOKEN},c\r\n`;
    const result = await check(text, { type: 'charge' });
    expect(result.rows.map((r) => r.line)).toEqual([2]);
    expect(only(result.errors)).toMatchObject({ line: 5, column: 'amount' });
  });

  it('skips rows of empty cells that spreadsheets export', async () => {
    const result = await check(
      csv(CHARGE_HEADER, `r1,ada@example.com,10,NGN,${TOKEN},x`, ',,,,,', '', '  ,,,,,'),
      { type: 'charge' },
    );
    expect(result.errors).toEqual([]);
    expect(result.totals).toEqual({ rows: 1, valid: 1, invalid: 0 });
  });

  it('accepts a multi-byte character split across input chunks', async () => {
    const bytes = Buffer.from(csv(CHARGE_HEADER, `r1,ada@example.com,10,NGN,${TOKEN},café`));
    const cut = bytes.indexOf(Buffer.from('é')) + 1;
    const result = await check([bytes.subarray(0, cut), bytes.subarray(cut)], { type: 'charge' });
    expect(result.errors).toEqual([]);
    expect(result.rows[0]?.narration).toBe('café');
  });

  it('reads a Node stream of small chunks', async () => {
    const bytes = Buffer.from(
      csv(
        CHARGE_HEADER,
        ...Array.from({ length: 50 }, (_, i) => `r${i},a${i}@example.com,${i + 1},NGN,${TOKEN},n`),
      ),
    );
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.subarray(i, i + 7));
    const result = await validateCsv(Readable.from(chunks), { type: 'charge' });
    expect(result.errors).toEqual([]);
    expect(result.rows.map((r) => r.line)).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));
  });
});

describe('validateCsv: header problems', () => {
  it('refuses a file whose first line is not a header', async () => {
    const result = await check(csv(`ada@example.com,10,NGN,${TOKEN}`), { type: 'charge' });
    const error = only(result.errors);
    expect(error.line).toBe(1);
    expect(error.column).toBeUndefined();
    expect(error.message).toMatch(/not a charge header/);
    expect(error.message).toMatch(/email, amount, currency, card_token/);
  });

  it('never quotes the card token of a first line that is not a header (charges and subscriptions)', async () => {
    const charge = await check(csv(`r1,ada@example.com,10,NGN,${TOKEN}`), { type: 'charge' });
    expect(JSON.stringify(charge.errors)).not.toContain(TOKEN);
    const error = only(charge.errors);
    expect(error.message).toMatch(/^the first line is not a charge header/);
    expect(error.message).toContain('found 5 columns with no known name');
    const token = 'ss-tkn-fin1refv13noydilm77dhske';
    const sub = await parseSubscriptionsCsv(
      csv(`gold-7,ada@example.com,${token},1500,NGN,month,2025-01-31T09:00:00Z,UTC`),
    );
    expect(sub.ok).toBe(false);
    expect(JSON.stringify(sub)).toContain('is not a subscription header');
    expect(JSON.stringify(sub)).not.toContain(token);
  });

  it('lists every missing required column', async () => {
    const result = await check(csv('reference,amount,currency', 'r1,10,NGN'), { type: 'charge' });
    expect(result.errors).toEqual([
      { line: 1, column: 'email', message: 'required column "email" is missing from the header' },
      {
        line: 1,
        column: 'card_token',
        message: 'required column "card_token" is missing from the header',
      },
    ]);
  });

  it('refuses an unknown column unless it is prefixed meta_', async () => {
    const result = await check(
      csv(`email,amount,currency,card_token,colour`, `a@b.co,1,NGN,${TOKEN},red`),
      {
        type: 'charge',
      },
    );
    const error = only(result.errors);
    expect(error).toMatchObject({ line: 1, column: 'colour' });
    expect(error.message).toMatch(/unknown column "colour".*meta_/);
  });

  it('refuses a meta_ column that is not a short label, by the rule a JSON meta_ field follows', async () => {
    const result = await check(csv(`${CHARGE_HEADER},meta_a b`, `r1,a@b.co,1,NGN,${TOKEN},n,x`), {
      type: 'charge',
    });
    const error = only(result.errors);
    expect(error).toMatchObject({ line: 1, column: 'meta_a b' });
    expect(error.message).toMatch(/may contain only letters, digits, "_" and "-" after "meta_"/);
  });

  it('hints at the other file type when a column belongs to it', async () => {
    const result = await check(csv(PAYOUT_HEADER), { type: 'charge' });
    const accountNumber = result.errors.find((e) => e.column === 'account_number');
    expect(accountNumber).toMatchObject({ line: 1 });
    expect(accountNumber?.message).toMatch(/is this a payout file\?/);
  });

  it('refuses a column given twice, whatever its case', async () => {
    const result = await check(csv('email,amount,Amount,currency,card_token'), { type: 'charge' });
    expect(only(result.errors)).toMatchObject({
      line: 1,
      column: 'Amount',
      message: 'column "Amount" appears twice in the header (columns 2 and 3)',
    });
  });

  it('refuses a meta_ column without a name', async () => {
    const result = await check(csv('email,amount,currency,card_token,meta_'), { type: 'charge' });
    expect(only(result.errors)).toMatchObject({ line: 1, column: 'meta_' });
  });

  it('refuses meta___proto__, which would not survive as a plain object key', async () => {
    const result = await check(csv('email,amount,currency,card_token,meta___proto__'), {
      type: 'charge',
    });
    expect(only(result.errors)).toMatchObject({ line: 1, column: 'meta___proto__' });
  });

  it('reports the header line when blank lines precede it', async () => {
    const result = await check(csv('', '', 'email,amount,currency'), { type: 'charge' });
    expect(only(result.errors)).toMatchObject({ line: 3, column: 'card_token' });
  });

  it('refuses a meta_ key that is not letters, digits, "_" and "-" (one issue per column)', async () => {
    const result = await check(csv('email,amount,currency,card_token,meta_Region Name,meta_a\tb'), {
      type: 'charge',
    });
    expect(result.errors).toEqual([
      {
        line: 1,
        column: 'meta_Region Name',
        message:
          'column "meta_Region Name" may contain only letters, digits, "_" and "-" after "meta_"',
      },
      {
        line: 1,
        column: 'meta_a\tb',
        message: 'header column 6 contains a control character',
      },
    ]);
  });
});

describe('validateCsv: limits shared with the other inputs', () => {
  it('refuses a meta value longer than 1024 characters, naming its column', async () => {
    const result = await check(
      csv(
        'reference,email,amount,currency,card_token,meta_note',
        `r1,ada@example.com,10,NGN,${TOKEN},${'n'.repeat(1024)}`,
        `r2,ada@example.com,10,NGN,${TOKEN},${'n'.repeat(1025)}`,
      ),
      { type: 'charge' },
    );
    expect(result.rows.map((r) => r.line)).toEqual([2]);
    expect(only(result.errors)).toEqual({
      line: 3,
      column: 'meta_note',
      message: 'meta_note is longer than 1024 characters',
    });
  });

  it('refuses a card_token longer than 4096 characters even under a larger field limit', async () => {
    const result = await check(
      csv(CHARGE_HEADER, `r1,ada@example.com,10,NGN,${'t'.repeat(4097)},x`),
      { type: 'charge', maxFieldBytes: 8192 },
    );
    expect(only(result.errors)).toEqual({
      line: 2,
      column: 'card_token',
      message: 'card_token is longer than 4096 characters',
    });
  });
});

describe('validateCsv: amounts', () => {
  const badAmounts: [string, string, RegExp][] = [
    ['sign', '+10', /must be digits/],
    ['negative', '-10', /must be digits/],
    ['exponent', '1e3', /must be digits/],
    ['upper exponent', '1E3', /must be digits/],
    ['thousands separator', '1,500', /must be digits/],
    ['three decimals', '10.123', /must be digits/],
    ['zero', '0', /greater than zero/],
    ['zero with decimals', '0.00', /greater than zero/],
    ['empty', '', /amount is required/],
    ['blank', '   ', /amount is required/],
    ['leading space', ' 10', /must be digits/],
    ['trailing space', '10 ', /must be digits/],
    ['inner space', '1 000', /must be digits/],
    ['letters', 'ten', /must be digits/],
    ['currency sign', '₦10', /must be digits/],
    ['two dots', '10.5.1', /must be digits/],
    ['leading dot', '.5', /must be digits/],
    ['trailing dot', '5.', /must be digits/],
    ['too large', '99999999999999', /is more than the maximum, 999999999999\.99$/],
    ['too large by a kobo', '1000000000000', /is more than the maximum, 999999999999\.99$/],
    ['too large, longer', '1'.repeat(40), /is more than the maximum, 999999999999\.99$/],
  ];

  it.each(badAmounts)('refuses %s (%j) at its line and column', async (_name, amount, message) => {
    const result = await check(
      csv(
        CHARGE_HEADER,
        `r1,ada@example.com,10,NGN,${TOKEN},x`,
        `r2,ada@example.com,"${amount}",NGN,${TOKEN},x`,
      ),
      { type: 'charge' },
    );
    const error = only(result.errors);
    expect(error).toMatchObject({ line: 3, column: 'amount' });
    expect(error.message).toMatch(message);
    expect(result.totals).toEqual({ rows: 2, valid: 1, invalid: 1 });
  });

  it('round-trips any minor amount formatted as a major-unit string', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 999_999_999_999_99 }), { minLength: 1, maxLength: 20 }),
        async (amounts) => {
          const lines = amounts.map(
            (a, i) => `r${i},ada@example.com,${formatMajor(amountMinor(a))},NGN,${TOKEN},x`,
          );
          const result = await check(csv(CHARGE_HEADER, ...lines), { type: 'charge' });
          expect(result.errors).toEqual([]);
          expect(result.rows.map((r) => r.amount)).toEqual(amounts);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses any amount with a sign, an exponent or a thousands separator', async () => {
    const digits = fc.string({
      unit: fc.constantFrom(...'0123456789'),
      minLength: 1,
      maxLength: 8,
    });
    const tainted = fc
      .tuple(digits, fc.constantFrom('+', '-', 'e', 'E', ','), fc.nat())
      .map(([d, bad, at]) => {
        const i = at % (d.length + 1);
        return d.slice(0, i) + bad + d.slice(i);
      });
    await fc.assert(
      fc.asyncProperty(tainted, async (amount) => {
        const result = await check(
          csv(CHARGE_HEADER, `r1,ada@example.com,"${amount}",NGN,${TOKEN},x`),
          { type: 'charge' },
        );
        expect(result.rows).toEqual([]);
        expect(only(result.errors)).toMatchObject({ line: 2, column: 'amount' });
      }),
      { numRuns: 200 },
    );
  });
});

describe('validateCsv: row problems', () => {
  it('refuses a charge currency in a payout file and the reverse', async () => {
    const charge = await check(csv(CHARGE_HEADER, `r1,ada@example.com,10,KES,${TOKEN},x`), {
      type: 'charge',
    });
    expect(only(charge.errors)).toMatchObject({
      line: 2,
      column: 'currency',
      message: 'currency "KES" is not allowed for charges (use NGN, USD, GBP, EUR)',
    });
    const payout = await check(csv(PAYOUT_HEADER, 'p1,0123456789,058,GTBank,Ada,10,USD,x,bank'), {
      type: 'payout',
    });
    expect(only(payout.errors)).toMatchObject({ line: 2, column: 'currency' });
    expect(only(payout.errors).message).toMatch(/not allowed for payouts/);
  });

  it('refuses a lower-case currency code rather than guessing', async () => {
    const result = await check(csv(CHARGE_HEADER, `r1,ada@example.com,10,ngn,${TOKEN},x`), {
      type: 'charge',
    });
    expect(only(result.errors)).toMatchObject({ line: 2, column: 'currency' });
  });

  it('refuses a duplicate reference, naming both lines, ignoring case', async () => {
    const result = await check(
      csv(
        CHARGE_HEADER,
        `inv-1,ada@example.com,10,NGN,${TOKEN},x`,
        `inv-2,ada@example.com,10,NGN,${TOKEN},x`,
        `INV-1,ada@example.com,10,NGN,${TOKEN},x`,
      ),
      { type: 'charge' },
    );
    const error = only(result.errors);
    expect(error).toMatchObject({ line: 4, column: 'reference' });
    expect(error.message).toBe(
      'reference "INV-1" is already used on line 2 (references must be unique in a file, ignoring case)',
    );
  });

  it('finds a duplicate reference even when the first row is invalid for another reason', async () => {
    const result = await check(
      csv(
        CHARGE_HEADER,
        `inv-1,ada@example.com,-1,NGN,${TOKEN},x`,
        `inv-1,ada@example.com,1,NGN,${TOKEN},x`,
      ),
      { type: 'charge' },
    );
    expect(result.errors.map((e) => [e.line, e.column])).toEqual([
      [2, 'amount'],
      [3, 'reference'],
    ]);
  });

  it('refuses a numeric reference that equals the line number of a row without one', async () => {
    // Both would derive the intent key bat_<batchId>_3.
    const result = await check(
      csv(
        CHARGE_HEADER,
        `3,ada@example.com,10,NGN,${TOKEN},x`,
        `,bola@example.com,10,NGN,${TOKEN},x`,
      ),
      { type: 'charge' },
    );
    const error = only(result.errors);
    expect(error).toMatchObject({ line: 3, column: 'reference' });
    expect(error.message).toMatch(
      /no reference, so it is keyed by its line number 3, which line 2 uses/,
    );

    const reverse = await check(
      csv(
        CHARGE_HEADER,
        `,ada@example.com,10,NGN,${TOKEN},x`,
        `2,bola@example.com,10,NGN,${TOKEN},x`,
      ),
      { type: 'charge' },
    );
    expect(only(reverse.errors)).toMatchObject({ line: 3, column: 'reference' });
    expect(only(reverse.errors).message).toMatch(/equals the line number of line 2/);
  });

  it('refuses a malformed or over-long reference', async () => {
    const result = await check(
      csv(
        CHARGE_HEADER,
        `inv 1,ada@example.com,10,NGN,${TOKEN},x`,
        `${'r'.repeat(33)},ada@example.com,10,NGN,${TOKEN},x`,
      ),
      { type: 'charge' },
    );
    expect(result.errors).toEqual([
      {
        line: 2,
        column: 'reference',
        message: 'reference may contain only letters, digits, "_" and "-"',
      },
      { line: 3, column: 'reference', message: 'reference is longer than 32 characters' },
    ]);
  });

  it('refuses a blank required field', async () => {
    const result = await check(
      csv(CHARGE_HEADER, `r1,,10,NGN,${TOKEN},x`, `r2,ada@example.com,10,NGN,  ,x`),
      { type: 'charge' },
    );
    expect(result.errors).toEqual([
      { line: 2, column: 'email', message: 'email is required' },
      { line: 3, column: 'card_token', message: 'card_token is required' },
    ]);
  });

  it('refuses a blank narration on a payout', async () => {
    const result = await check(csv(PAYOUT_HEADER, 'p1,0123456789,058,GTBank,Ada,10,NGN,,bank'), {
      type: 'payout',
    });
    expect(only(result.errors)).toMatchObject({
      line: 2,
      column: 'narration',
      message: 'narration is required',
    });
  });

  it('refuses an invalid email', async () => {
    const result = await check(csv(CHARGE_HEADER, `r1,ada@,10,NGN,${TOKEN},x`), { type: 'charge' });
    expect(only(result.errors)).toMatchObject({ line: 2, column: 'email' });
  });

  it('refuses an account number that is not digits, and an NGN one that is not 10 digits', async () => {
    const result = await check(
      csv(
        PAYOUT_HEADER,
        'p1,0123-456789,058,GTBank,Ada,10,NGN,x,bank',
        'p2,123456789,058,GTBank,Ada,10,NGN,x,bank',
        'p3,+233245690993,MTNGH,MTN,Kofi,10,GHS,x,momo',
      ),
      { type: 'payout' },
    );
    expect(result.errors.map((e) => [e.line, e.column])).toEqual([
      [2, 'account_number'],
      [3, 'account_number'],
      [4, 'account_number'],
    ]);
    expect(result.errors[1]?.message).toMatch(/10 digits.*leading zero/);
  });

  it('requires payment_mode for KES and GHS, and refuses momo for NGN', async () => {
    const result = await check(
      csv(
        PAYOUT_HEADER,
        'p1,254712345678,MPESA,M-Pesa,Wanjiru,10,KES,x,',
        'p2,233245690993,MTNGH,MTN,Kofi,10,GHS,x,wallet',
        'p3,0123456789,058,GTBank,Ada,10,NGN,x,momo',
      ),
      { type: 'payout' },
    );
    expect(result.errors).toEqual([
      {
        line: 2,
        column: 'payment_mode',
        message: 'payment_mode is required for KES payouts ("bank" or "momo")',
      },
      {
        line: 3,
        column: 'payment_mode',
        message: 'payment_mode "wallet" must be "bank" or "momo"',
      },
      {
        line: 4,
        column: 'payment_mode',
        message: 'payment_mode "momo" is only available for KES and GHS payouts',
      },
    ]);
  });

  it('requires payment_mode for GHS even when the column is absent', async () => {
    const result = await check(
      csv(
        'account_number,bank_code,bank_name,account_name,amount,currency,narration',
        '233245690993,MTNGH,MTN,Kofi,10,GHS,x',
      ),
      { type: 'payout' },
    );
    expect(only(result.errors)).toMatchObject({ line: 2, column: 'payment_mode' });
  });

  it('refuses a line break or tab inside a known column, but not inside meta', async () => {
    const result = await check(
      csv(
        'email,amount,currency,card_token,narration,meta_note',
        `ada@example.com,10,NGN,${TOKEN},"two`,
        `lines",ok`,
        `ada@example.com,10,NGN,${TOKEN},ok,"meta may`,
        `span lines"`,
      ),
      { type: 'charge' },
    );
    expect(only(result.errors)).toMatchObject({ line: 2, column: 'narration' });
    expect(result.rows.map((r) => r.line)).toEqual([4]);
  });

  it('reports every bad column of a row, one error each', async () => {
    const result = await check(csv(CHARGE_HEADER, `r1,nope,1.001,XYZ,${TOKEN},x`), {
      type: 'charge',
    });
    expect(result.errors.map((e) => e.column)).toEqual(['email', 'amount', 'currency']);
    expect(result.errors.every((e) => e.line === 2)).toBe(true);
  });

  it('never repeats a card token in an error message', async () => {
    const secret = 'ab12 cd34 ef56';
    const result = await check(
      csv(
        CHARGE_HEADER,
        `r1,ada@example.com,10,NGN,${secret},x`,
        `r2,ada@example.com,10,NGN,x"${secret},x`,
      ),
      { type: 'charge' },
    );
    expect(result.errors.length).toBeGreaterThan(0);
    for (const error of result.errors) expect(formatCsvError(error)).not.toContain('ab12');
  });
});

describe('validateCsv: structure', () => {
  it('refuses a row with too many fields', async () => {
    const result = await check(
      csv(
        CHARGE_HEADER,
        `r1,ada@example.com,1,500,NGN,${TOKEN},x`,
        `r2,ada@example.com,10,NGN,${TOKEN},x`,
      ),
      { type: 'charge' },
    );
    const error = only(result.errors);
    expect(error.line).toBe(2);
    expect(error.column).toBeUndefined();
    expect(error.message).toBe(
      'row has 7 fields but the header has 6 (an unquoted comma in a value?)',
    );
    expect(result.rows.map((r) => r.line)).toEqual([3]);
  });

  it('refuses a row with too few fields, naming the first missing column', async () => {
    const result = await check(csv(CHARGE_HEADER, `r1,ada@example.com,10,NGN`), { type: 'charge' });
    expect(only(result.errors)).toEqual({
      line: 2,
      column: 'card_token',
      message: 'row has 4 fields but the header has 6',
    });
  });

  it('reports a quote that is never closed at the line where its record starts', async () => {
    const result = await check(
      csv(
        CHARGE_HEADER,
        `r1,ada@example.com,10,NGN,${TOKEN},x`,
        `r2,ada@example.com,10,NGN,${TOKEN},"open`,
        'more',
      ),
      { type: 'charge' },
    );
    expect(result.rows.map((r) => r.line)).toEqual([2]);
    const error = only(result.errors);
    expect(error).toMatchObject({ line: 3, column: 'narration' });
    expect(error.message).toMatch(/unbalanced quotes: .* never closed/);
    expect(result.totals).toEqual({ rows: 2, valid: 1, invalid: 1 });
  });

  it('reports a closing quote followed by text', async () => {
    const result = await check(
      csv(CHARGE_HEADER, `r1,ada@example.com,10,NGN,${TOKEN},"Rent" March`),
      { type: 'charge' },
    );
    const error = only(result.errors);
    expect(error).toMatchObject({ line: 2, column: 'narration' });
    expect(error.message).toMatch(/unbalanced quotes: a closing quote is followed by text/);
  });

  it('reports a quote inside an unquoted field', async () => {
    const result = await check(
      csv(
        CHARGE_HEADER,
        `r1,ada@example.com,10,NGN,${TOKEN},x`,
        `r2,ada"@example.com,10,NGN,${TOKEN},x`,
      ),
      { type: 'charge' },
    );
    const error = only(result.errors);
    expect(error).toMatchObject({ line: 3, column: 'email' });
    expect(error.message).toMatch(/unbalanced quotes: a quote inside an unquoted field/);
  });

  it('reports invalid UTF-8 at its line, after validating the rows before it', async () => {
    const head = Buffer.from(csv(CHARGE_HEADER, `r1,ada@example.com,10,NGN,${TOKEN},x`));
    const bad = Buffer.concat([
      Buffer.from(`r2,ada@example.com,10,NGN,${TOKEN},caf`),
      Buffer.from([0xe9]), // Latin-1 "é"
      Buffer.from('\n'),
      Buffer.from(`r3,ada@example.com,10,NGN,${TOKEN},x\n`),
    ]);
    const result = await check([head, bad.subarray(0, 10), bad.subarray(10)], { type: 'charge' });
    expect(result.rows.map((r) => r.line)).toEqual([2]);
    expect(only(result.errors)).toEqual({
      line: 3,
      message: 'line is not valid UTF-8; save the file as UTF-8 (CSV UTF-8)',
    });
  });

  it('reports a multi-byte sequence cut off by the end of the file', async () => {
    const bytes = Buffer.concat([
      Buffer.from(csv(CHARGE_HEADER) + `r1,ada@example.com,10,NGN,${TOKEN},caf`),
      Buffer.from([0xc3]),
    ]);
    const result = await check(bytes, { type: 'charge' });
    expect(only(result.errors)).toMatchObject({ line: 2, message: expect.stringMatching(/UTF-8/) });
  });

  it('refuses a UTF-16 file with a clear message', async () => {
    const result = await check(Buffer.from('\ufeffemail,amount\n', 'utf16le'), { type: 'charge' });
    expect(only(result.errors)).toMatchObject({
      line: 1,
      message: expect.stringMatching(/UTF-16/),
    });
  });

  it('refuses an empty file', async () => {
    for (const input of ['', '\ufeff', '\n\n', '  \n']) {
      const result = await check(input, { type: 'charge' });
      expect(only(result.errors)).toEqual({
        line: 1,
        message: 'the file is empty: expected a header row',
      });
    }
  });

  it('refuses a file with a header and no rows', async () => {
    const result = await check(csv(CHARGE_HEADER, '', ''), { type: 'charge' });
    expect(only(result.errors)).toEqual({ line: 1, message: 'the file has a header but no rows' });
  });

  it('refuses a field longer than maxFieldBytes, counting UTF-8 bytes', async () => {
    const result = await check(
      csv(
        CHARGE_HEADER,
        `r1,ada@example.com,10,NGN,${TOKEN},${'é'.repeat(51)}`, // 102 bytes, 51 characters
        `r2,ada@example.com,10,NGN,${TOKEN},${'e'.repeat(100)}`,
      ),
      { type: 'charge', maxFieldBytes: 100 },
    );
    expect(only(result.errors)).toEqual({
      line: 2,
      column: 'narration',
      message: 'field is longer than 100 bytes',
    });
    expect(result.rows.map((r) => r.line)).toEqual([3]);
  });

  it('reports an oversized required field once, not also as missing', async () => {
    const result = await check(
      csv(PAYOUT_HEADER, `p1,0123456789,058,GTBank,Ada,10,KES,${'n'.repeat(200)},momo`),
      { type: 'payout', maxFieldBytes: 100 },
    );
    expect(only(result.errors)).toEqual({
      line: 2,
      column: 'narration',
      message: 'field is longer than 100 bytes',
    });
  });

  it('refuses a line longer than maxLineBytes and stops there', async () => {
    const long = `r2,ada@example.com,10,NGN,${TOKEN},${'x'.repeat(300)}`;
    const result = await check(
      csv(
        CHARGE_HEADER,
        `r1,ada@example.com,10,NGN,${TOKEN},x`,
        long,
        `r3,ada@example.com,10,NGN,${TOKEN},x`,
      ),
      { type: 'charge', maxLineBytes: 256 },
    );
    expect(result.rows.map((r) => r.line)).toEqual([2]);
    expect(only(result.errors)).toEqual({ line: 3, message: 'line is longer than 256 bytes' });
  });

  it('stops a file with no line breaks at maxLineBytes without reading it all', async () => {
    let served = 0;
    function* endless() {
      for (;;) {
        served++;
        yield 'x'.repeat(1024);
      }
    }
    const result = await validateCsv(endless(), { type: 'charge', maxLineBytes: 4096 });
    expect(only(result.errors)).toEqual({ line: 1, message: 'line is longer than 4096 bytes' });
    expect(served).toBeLessThan(10);
  });

  it('stops a record that an unclosed quote stretches past maxLineBytes', async () => {
    const rest = Array.from({ length: 50 }, (_, i) => `r${i},ada@example.com,10,NGN,${TOKEN},x`);
    const result = await check(
      csv(CHARGE_HEADER, `r1,ada@example.com,10,NGN,${TOKEN},"open`, ...rest),
      { type: 'charge', maxLineBytes: 1024 },
    );
    expect(only(result.errors)).toMatchObject({ line: 2, column: 'narration' });
    expect(only(result.errors).message).toMatch(/record is too long.*never closed/);
  });

  it('lists at most maxErrors errors and counts the rest', async () => {
    const bad = Array.from({ length: 5 }, (_, i) => `r${i},ada@example.com,-1,NGN,${TOKEN},x`);
    const result = await check(csv(CHARGE_HEADER, ...bad, `ok,ada@example.com,1,NGN,${TOKEN},x`), {
      type: 'charge',
      maxErrors: 2,
    });
    expect(result.errors).toEqual([
      expect.objectContaining({ line: 2, column: 'amount' }),
      expect.objectContaining({ line: 3, column: 'amount' }),
      { line: 4, message: '3 more errors from this line on are not listed (limit 2)' },
    ]);
    expect(result.totals).toEqual({ rows: 6, valid: 1, invalid: 5 });
    expect(result.rows.map((r) => r.line)).toEqual([7]);
  });

  it('refuses nonsensical limits', async () => {
    await expect(check('', { type: 'charge', maxFieldBytes: 0 })).rejects.toThrow(RangeError);
  });
});

describe('validateCsvStream', () => {
  it('yields rows and errors in file order and returns the totals', async () => {
    const stream = validateCsvStream(
      [
        csv(
          'email,amount,currency,card_token,meta_x',
          `a@b.co,1,NGN,${TOKEN},1`,
          `a@b.co,0,NGN,${TOKEN},2`,
          `a@b.co,3,NGN,${TOKEN},3`,
        ),
      ],
      { type: 'charge' },
    );
    const seen: string[] = [];
    let step = await stream.next();
    while (step.done !== true) {
      const item = step.value;
      seen.push(item.row !== undefined ? `row ${item.row.line}` : `error ${item.error.line}`);
      step = await stream.next();
    }
    expect(seen).toEqual(['row 2', 'error 3', 'row 4']);
    expect(step.value).toEqual({
      totals: { rows: 3, valid: 2, invalid: 1 },
      metaKeys: ['x'],
      contentHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      layoutHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('closes the input when the consumer stops early', async () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => `r${i},a@b.co,1,NGN,${TOKEN},x\n`);
    const input = Readable.from([CHARGE_HEADER + '\n', ...lines]);
    let count = 0;
    for await (const item of validateCsvStream(input, { type: 'charge' })) {
      expect(item.row).toBeDefined();
      if (++count === 3) break;
    }
    expect(input.destroyed).toBe(true);
  });

  it('passes input read errors through as exceptions', async () => {
    function* failing() {
      yield Buffer.from(csv(CHARGE_HEADER));
      throw new Error('disk gone');
    }
    await expect(validateCsv(failing(), { type: 'charge' })).rejects.toThrow('disk gone');
  });
});

describe('validateCsvStream: what a refused row keeps', () => {
  /** Each error's line and echo, in order. */
  async function echoes(input: string, type: InstructionType) {
    const out: [number, unknown][] = [];
    for await (const item of validateCsvStream([input], { type })) {
      if (item.error !== undefined) out.push([item.error.line, item.echo]);
    }
    return out;
  }

  it('its reference (bounded when it is what was invalid) and meta values, never a card token', async () => {
    const long = 'x'.repeat(40);
    const out = await echoes(
      csv(
        `${CHARGE_HEADER},meta_order`,
        `ok-1,a@b.co,1,NGN,${TOKEN},,o-1`,
        `bad-2,not-an-email,1,NGN,${TOKEN},,"=HYPERLINK(""x"")"`,
        `${long},a@b.co,1,NGN,${TOKEN},,o-3`,
        `ok-1,a@b.co,1,NGN,${TOKEN},,o-4`,
        `bad 5,a@b.co,1,NGN,4111111111111111,,`,
        `ok-6,a@b.co,1,NGN,${TOKEN},o-6`,
      ),
      'charge',
    );
    expect(out).toEqual([
      [3, { reference: 'bad-2', meta: { order: '=HYPERLINK("x")' } }],
      [4, { reference: `${'x'.repeat(32)}…`, meta: { order: 'o-3' } }],
      // A duplicate of line 2's reference: a row otherwise valid.
      [5, { reference: 'ok-1', meta: { order: 'o-4' } }],
      // Two errors (reference, card_token), each with the row's echo.
      [6, { reference: 'bad 5' }],
      [6, { reference: 'bad 5' }],
      // A wrong field count: the cells cannot be matched to columns, so nothing is kept.
      [7, undefined],
    ]);
    expect(JSON.stringify(out)).not.toContain(TOKEN);
    expect(JSON.stringify(out)).not.toContain('4111');
  });

  it('never an account number or another payout field', async () => {
    const out = await echoes(
      csv(
        `${PAYOUT_HEADER},meta_employee`,
        'pay-1,0123456789,058,GTBank,Ada Obi,0,NGN,salary,bank,E-1',
        ',9876543210,058,GTBank,Ada Obi,abc,NGN,salary,bank,',
      ),
      'payout',
    );
    expect(out).toEqual([
      [2, { reference: 'pay-1', meta: { employee: 'E-1' } }],
      [3, {}],
    ]);
    for (const secret of ['0123456789', '9876543210', 'GTBank', 'Ada Obi', 'salary']) {
      expect(JSON.stringify(out)).not.toContain(secret);
    }
  });
});
