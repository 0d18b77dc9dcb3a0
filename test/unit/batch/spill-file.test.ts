/**
 * The spill file's line format (batches/spill-file.ts): what ingest writes while validating is
 * read back as the same intent row, with the key derived from the batch id and the row's
 * reference or line, and refused rows keep their message.
 */
import { describe, expect, it } from 'vitest';
import { amountMinor } from '../../../src/kernel/money.ts';
import type { Payee } from '../../../src/kernel/payment.ts';
import type { PayoutRow } from '../../../src/input/instructions.ts';
import { readSpillLine, spillError, spillRow } from '../../../src/batches/spill-file.ts';

const payee: Extract<Payee, { kind: 'payout' }> = {
  kind: 'payout',
  accountNumber: '0123456789',
  bankCode: '058',
  bankName: 'GTBank',
  accountName: 'Ada Obi',
  narration: 'Salary\tMarch\n2026',
  paymentMode: 'bank',
};

function row(line: number, reference: string | undefined, meta: Record<string, string> = {}) {
  return {
    line,
    ...(reference !== undefined ? { reference } : {}),
    amount: amountMinor(150050),
    currency: 'NGN',
    accountNumber: payee.accountNumber,
    bankCode: payee.bankCode,
    bankName: payee.bankName,
    accountName: payee.accountName,
    narration: payee.narration,
    paymentMode: 'bank',
    meta,
  } as PayoutRow;
}

describe('spill file lines', () => {
  it('a row with a reference comes back keyed by it, payee and meta as JSON', () => {
    const text = spillRow(row(7, 'sal-7', { employee: 'E7' }), payee);
    expect(text.split('\n')).toHaveLength(1);
    expect(readSpillLine(text, 'b1')).toEqual({
      kind: 'row',
      reference: 'sal-7',
      referencesOwnLine: false,
      row: {
        key: 'bat_b1_sal-7',
        line: 7,
        amount: 150050,
        currency: 'NGN',
        payee: JSON.stringify(payee),
        meta: JSON.stringify({ employee: 'E7' }),
      },
    });
  });

  it('a row without a reference is keyed by its line, with no meta', () => {
    const read = readSpillLine(spillRow(row(12, undefined), payee), 'b1');
    expect(read).toMatchObject({
      kind: 'row',
      referencesOwnLine: false,
      row: { key: 'bat_b1_12', line: 12, meta: '' },
    });
    expect(read).toHaveProperty('reference', undefined);
  });

  it('a reference equal to its own line is flagged (same key as a row without one)', () => {
    const read = readSpillLine(spillRow(row(6, '6'), payee), 'b1');
    expect(read).toMatchObject({ kind: 'row', referencesOwnLine: true, row: { key: 'bat_b1_6' } });
  });

  it('a refused row keeps its line and message, tabs and line breaks included', () => {
    const message = 'amount: must be digits;\tcurrency: "XYZ"\nis not allowed';
    const text = spillError(5, message);
    expect(text.split('\n')).toHaveLength(1);
    expect(readSpillLine(text, 'b1')).toEqual({ kind: 'invalid', row: { line: 5, message } });
  });

  it('a refused row keeps the reference and meta values it shows, on one line', () => {
    const echo = { reference: 'pay\t7', meta: { note: 'a\nb', tag: '=1+1' } };
    const text = spillError(5, 'amount: is required', echo);
    expect(text.split('\n')).toHaveLength(1);
    expect(text.split('\t')).toHaveLength(4);
    expect(readSpillLine(text, 'b1')).toEqual({
      kind: 'invalid',
      row: { line: 5, message: 'amount: is required', ...echo },
    });
  });

  it('a refused row spilled without them (an older line) still reads', () => {
    expect(readSpillLine('E\t9\t"currency: bad"', 'b1')).toEqual({
      kind: 'invalid',
      row: { line: 9, message: 'currency: bad' },
    });
  });
});
