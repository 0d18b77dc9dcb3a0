/**
 * What a refused batch row keeps for the results file (input/instructions.ts `refusedRowEcho`,
 * docs/batches.md "--skip-invalid"): its reference, bounded, and its meta values, nothing else.
 */
import { describe, expect, it } from 'vitest';
import { CUT_MARK, refusedRowEcho } from '../../../src/input/instructions.ts';
import { ROW_REFERENCE_MAX } from '../../../src/kernel/ids.ts';
import { META_VALUE_MAX } from '../../../src/input/fields.ts';
import { CARD_NUMBER_REMOVED } from '../../../src/kernel/card-number.ts';

const PAN = '4111111111111111';

describe('refusedRowEcho', () => {
  it('keeps a valid reference and the meta values as written, blank ones left out', () => {
    expect(refusedRowEcho('pay-7', { employee: 'E-7', team: '', note: ' =SUM(A1) ' })).toEqual({
      reference: 'pay-7',
      meta: { employee: 'E-7', note: ' =SUM(A1) ' },
    });
  });

  it('has nothing for a row without a reference or meta', () => {
    expect(refusedRowEcho(undefined, {})).toEqual({});
    expect(refusedRowEcho(undefined, { a: '' })).toEqual({});
  });

  it('keeps an invalid reference as written when it is short enough', () => {
    expect(refusedRowEcho('pay 7!', {})).toEqual({ reference: 'pay 7!' });
  });

  it(`cuts a reference longer than ${ROW_REFERENCE_MAX} characters, marked`, () => {
    const long = 'r'.repeat(ROW_REFERENCE_MAX) + 'TAIL';
    const echo = refusedRowEcho(long, {});
    expect(echo.reference).toBe(`${'r'.repeat(ROW_REFERENCE_MAX)}${CUT_MARK}`);
    expect(refusedRowEcho('r'.repeat(ROW_REFERENCE_MAX), {}).reference).toBe(
      'r'.repeat(ROW_REFERENCE_MAX),
    );
    // One character over is cut: the bound is the length itself.
    expect(refusedRowEcho('r'.repeat(ROW_REFERENCE_MAX + 1), {}).reference).toBe(
      `${'r'.repeat(ROW_REFERENCE_MAX)}${CUT_MARK}`,
    );
    expect(refusedRowEcho(undefined, { m: 'm'.repeat(META_VALUE_MAX + 1) }).meta).toEqual({
      m: `${'m'.repeat(META_VALUE_MAX)}${CUT_MARK}`,
    });
    expect(refusedRowEcho(undefined, { m: 'm'.repeat(META_VALUE_MAX) }).meta).toEqual({
      m: 'm'.repeat(META_VALUE_MAX),
    });
  });

  it('never cuts a character in half', () => {
    const long = `${'r'.repeat(ROW_REFERENCE_MAX - 1)}😀😀`;
    expect(refusedRowEcho(long, {}).reference).toBe(
      `${'r'.repeat(ROW_REFERENCE_MAX - 1)}${CUT_MARK}`,
    );
  });

  it('leaves out a reference holding a card number or a control character', () => {
    expect(refusedRowEcho(PAN, {})).toEqual({});
    expect(refusedRowEcho(`ref ${PAN.replace(/(\d{4})/g, '$1 ').trim()} x`, {})).toEqual({});
    expect(refusedRowEcho('a\nb', {})).toEqual({});
    expect(refusedRowEcho('a\tb', {})).toEqual({});
  });

  it('removes card numbers from meta values and cuts over-long ones', () => {
    const echo = refusedRowEcho(undefined, {
      card: `paid with ${PAN}`,
      long: 'm'.repeat(META_VALUE_MAX + 10),
    });
    expect(echo.meta).toEqual({
      card: `paid with ${CARD_NUMBER_REMOVED}`,
      long: `${'m'.repeat(META_VALUE_MAX)}${CUT_MARK}`,
    });
  });
});
