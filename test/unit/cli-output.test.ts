/**
 * What reaches stdout (src/cli/output.ts): humans get lines; `--json` gets exactly one document at
 * the end — the result, or the error (with the result's fields when there was one) — and info
 * lines go to stderr instead. A value's control characters reach a terminal as visible escapes,
 * never as a line break or an escape sequence (`printable`); JSON stays the exact value.
 */
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CliError, UsageError } from '../../src/cli/errors.ts';
import { createOutput, formatPage, jsonText, printable } from '../../src/cli/output.ts';

/** Anything a terminal would act on rather than show (output.ts UNPRINTABLE). */
const RAW_CONTROL = /[\p{Cc}\p{Zl}\p{Zp}\u202a-\u202e\u2066-\u2069]/u;
/** Conceals what follows, moves up a line and erases it, then a forged line. */
const FORGED = 'payroll.csv\u001b[8m\u001b[1A\u001b[2K\n  rows 1 (1 valid)\r\u009b2J\u202eNGN 5';

function streams() {
  const out = new PassThrough();
  const err = new PassThrough();
  const text = { out: '', err: '' };
  out.on('data', (c: Buffer) => (text.out += c.toString()));
  err.on('data', (c: Buffer) => (text.err += c.toString()));
  return { out, err, text };
}

describe('createOutput', () => {
  it('human: results and info on stdout, errors on stderr, finish prints nothing', () => {
    const s = streams();
    const o = createOutput(false, s.out, s.err);
    o.info('working');
    o.result({ n: 1 }, () => 'one');
    o.error('careful');
    o.finish({ code: 'x', message: 'y' });
    expect(s.text).toEqual({ out: 'working\none\n', err: 'careful\n' });
    expect(o.progress).toBe(s.out);
  });

  it('--json: info on stderr, the result held until finish, one line of JSON', () => {
    const s = streams();
    const o = createOutput(true, s.out, s.err);
    o.info('working');
    o.result({ n: 1 });
    expect(s.text.out).toBe('');
    o.finish();
    o.finish();
    expect(s.text).toEqual({ out: '{"n":1}\n', err: 'working\n' });
    expect(o.progress).toBe(s.err);
  });

  it('--json failure: the error document, merged with a result printed before the failure', () => {
    const bare = streams();
    createOutput(true, bare.out, bare.err).finish({ code: 'not_found', message: 'no batch "b"' });
    expect(JSON.parse(bare.text.out)).toEqual({
      error: { code: 'not_found', message: 'no batch "b"' },
    });

    const withResult = streams();
    const o = createOutput(true, withResult.out, withResult.err);
    o.result({ batchId: 'b', batch: { final: 3 } });
    o.finish({ code: 'rows_failed', message: '1 of 3 rows did not succeed' });
    expect(JSON.parse(withResult.text.out)).toEqual({
      batchId: 'b',
      batch: { final: 3 },
      error: { code: 'rows_failed', message: '1 of 3 rows did not succeed' },
    });
  });

  it('--json: a second result is a bug, and a streamed document is not followed by another', () => {
    const s = streams();
    const o = createOutput(true, s.out, s.err);
    o.result({ a: 1 });
    expect(() => o.result({ b: 2 })).toThrow(/two results/);

    const t = streams();
    const p = createOutput(true, t.out, t.err);
    p.takeStdout().write('[]\n');
    p.finish({ code: 'failed', message: 'after streaming' });
    expect(t.text.out).toBe('[]\n');
    expect(() => p.result({})).toThrow();
  });
});

describe('printable', () => {
  it('shows line breaks, ESC, DEL, C1, separators and bidi overrides as escapes', () => {
    expect(printable('a\nb\rc\td')).toBe('a\\nb\\rc\\td');
    expect(printable('\u001b[8m\u0000\u007f')).toBe('\\x1b[8m\\x00\\x7f');
    expect(printable('\u009b2J\u0085')).toBe('\\u009b2J\\u0085');
    expect(printable('a\u2028b\u2029c\u202ed\u2066e')).toBe('a\\u2028b\\u2029c\\u202ed\\u2066e');
  });

  it('leaves printable text alone: letters of any script, emoji, backslashes', () => {
    for (const text of ['Paie — été 2026.csv', 'Ọlá Adébáyọ̀', 'مرحبا', '💸 C:\\pay\\x1b', ''])
      expect(printable(text)).toBe(text);
  });

  it('never leaves a control character, is one line, and applying it twice changes nothing', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const once = printable(text);
        return !RAW_CONTROL.test(once) && printable(once) === once;
      }),
    );
  });
});

describe('jsonText', () => {
  it('the same value back, with no raw DEL or C1 in the text, with or without indent', () => {
    const value = { name: FORGED, del: 'x\u007fy', n: 1, list: ['\u0085'] };
    for (const indent of [undefined, 2]) {
      const text = jsonText(value, indent);
      expect(JSON.parse(text)).toEqual(value);
      expect(text.replace(/\n/g, '')).not.toMatch(RAW_CONTROL);
    }
    expect(jsonText(value, 2)).toBe(
      JSON.stringify(value, null, 2)
        .replace('\u009b', '\\u009b')
        .replace('\u202e', '\\u202e')
        .replace('\u007f', '\\u007f')
        .replace('\u0085', '\\u0085'),
    );
  });
});

describe('human output of values from outside', () => {
  it("result: the formatter's lines are lines, a value's line break and ESC stay visible on its line", () => {
    const s = streams();
    const o = createOutput(false, s.out, s.err);
    o.result({ source: FORGED }, (v) => [
      `batch b1 (payout, ${(v as { source: string }).source})`,
      '  rows 3',
    ]);
    expect(s.text.out).toBe(`batch b1 (payout, ${printable(FORGED)})\n  rows 3\n`);
    expect(s.text.out.split('\n')).toHaveLength(3);
    expect(s.text.out.replace(/\n/g, '')).not.toMatch(RAW_CONTROL);
  });

  it('result without a formatter, info and error lines: no raw control either', () => {
    const s = streams();
    const o = createOutput(false, s.out, s.err);
    o.info(`submitted ${FORGED}`);
    o.result({ reason: FORGED, del: '\u007f' });
    o.error(['error: no batch', `  ${FORGED}`]);
    expect(s.text.out.replace(/\n/g, '')).not.toMatch(RAW_CONTROL);
    expect(s.text.err.replace(/\n/g, '')).not.toMatch(RAW_CONTROL);
    expect(s.text.err.split('\n')).toHaveLength(3);
    // The indented JSON a human gets without a formatter is still JSON, of the same value.
    expect(JSON.parse(s.text.out.slice(s.text.out.indexOf('{')))).toEqual({
      reason: FORGED,
      del: '\u007f',
    });
  });

  it('--json: the exact value in the document, no raw C1 in its text', () => {
    const s = streams();
    const o = createOutput(true, s.out, s.err);
    o.result({ source: FORGED });
    o.finish();
    expect(JSON.parse(s.text.out)).toEqual({ source: FORGED });
    expect(s.text.out.trimEnd()).not.toMatch(RAW_CONTROL);
  });

  it('formatPage measures cells as they are shown, so columns stay aligned', () => {
    const lines = formatPage(
      [
        ['b\u001b[8m1', 'payout', 'queued'],
        ['b2', 'charge', 'queued'],
      ],
      null,
      'none',
    );
    expect(lines).toEqual(['b\\x1b[8m1  payout  queued', `b2${' '.repeat(9)}charge  queued`]);
  });

  it('an error of several lines keeps them as lines and joins them in its message', () => {
    const err = new UsageError(['invalid input:', `  --meta: "${FORGED}"`]);
    expect(err.lines).toEqual(['invalid input:', `  --meta: "${FORGED}"`]);
    expect(err.message).toBe(`invalid input:\n  --meta: "${FORGED}"`);
    expect(new CliError('one').lines).toEqual(['one']);
  });
});
