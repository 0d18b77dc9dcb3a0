/**
 * What reaches stdout (src/cli/output.ts): humans get lines; `--json` gets exactly one document at
 * the end — the result, or the error (with the result's fields when there was one) — and info
 * lines go to stderr instead.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createOutput } from '../../src/cli/output.ts';

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
