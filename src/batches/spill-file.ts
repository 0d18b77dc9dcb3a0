/**
 * The spill file of a batch ingest: valid rows (card tokens already sealed) and, with
 * skip-invalid, refused rows, written while the file is validated and read back in chunks, so a
 * file of any length costs flat memory.
 *
 * One line per row, tab-separated, so reading it back costs a split rather than a JSON parse. A
 * valid row: `R line reference amount currency payee-json meta-json` (reference and meta empty
 * when absent); a refused row (only with skipInvalid): `E line message-json [echo-json]`, the echo
 * being what the results file shows of it (`{reference?, meta?}`, input/instructions.ts
 * `refusedRowEcho`; left out when it has none). No field holds a tab or a line break: references are
 * `[A-Za-z0-9_-]`, and JSON escapes both.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { batchIntentKey } from '../kernel/ids.ts';
import type { AmountMinor, Currency } from '../kernel/money.ts';
import type { Payee } from '../kernel/payment.ts';
import type { BatchIntentRow } from '../kernel/ports.ts';
import type { BatchRow, RefusedRowEcho } from '../input/instructions.ts';
import type { InvalidRow } from './ports.ts';

const SPILL_BUFFER_LINES = 512;

/** The spill line of a valid row. */
export function spillRow(row: BatchRow, payee: Payee): string {
  const meta = Object.keys(row.meta).length > 0 ? JSON.stringify(row.meta) : '';
  return `R\t${row.line}\t${row.reference ?? ''}\t${row.amount}\t${row.currency}\t${JSON.stringify(payee)}\t${meta}`;
}

/** The spill line of a refused row, with what the results file shows of it. */
export function spillError(line: number, message: string, echo: RefusedRowEcho = {}): string {
  const kept = echo.reference !== undefined || echo.meta !== undefined;
  return `E\t${line}\t${JSON.stringify(message)}${kept ? `\t${JSON.stringify(echo)}` : ''}`;
}

/** A spill line read back: an intent row of batch `batchId`, or a refused row. */
export type SpilledLine =
  | {
      kind: 'row';
      row: BatchIntentRow;
      /** The row's reference as written; undefined for a row keyed by its line. */
      reference: string | undefined;
      /** The row's reference equals its own line number (see BatchStore.markReferencedLines). */
      referencesOwnLine: boolean;
    }
  | { kind: 'invalid'; row: InvalidRow };

/** Parses one non-empty spill line; the intent key is derived from `batchId`. */
export function readSpillLine(text: string, batchId: string): SpilledLine {
  const f = text.split('\t');
  const line = Number(f[1]);
  if (f[0] === 'E') {
    const message = JSON.parse(f[2] ?? '""') as string;
    const echo = f[3] === undefined || f[3] === '' ? {} : (JSON.parse(f[3]) as RefusedRowEcho);
    return {
      kind: 'invalid',
      row: {
        line,
        message,
        ...(echo.reference !== undefined ? { reference: echo.reference } : {}),
        ...(echo.meta !== undefined ? { meta: echo.meta } : {}),
      },
    };
  }
  const ref = f[2] === '' || f[2] === undefined ? undefined : f[2];
  return {
    kind: 'row',
    reference: ref,
    referencesOwnLine: ref !== undefined && ref === f[1],
    row: {
      key: batchIntentKey(batchId, ref ?? line),
      line,
      amount: Number(f[3]) as AmountMinor,
      currency: f[4] as Currency,
      payee: f[5] ?? '',
      meta: f[6] ?? '',
    },
  };
}

/** Appends lines to the spill file with backpressure, a few hundred lines per write. */
export class SpillWriter {
  private readonly out: WriteStream;
  private buffer: string[] = [];
  private failed: Error | undefined;

  constructor(path: string) {
    // 0600: the file holds payees (sealed card tokens, account numbers) until it is removed.
    this.out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    this.out.on('error', (err) => {
      this.failed = err;
    });
  }

  async write(line: string): Promise<void> {
    this.buffer.push(line);
    if (this.buffer.length >= SPILL_BUFFER_LINES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.buffer.length === 0) return;
    const text = `${this.buffer.join('\n')}\n`;
    this.buffer = [];
    if (!this.out.write(text)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          this.out.off('error', onError);
          resolve();
        };
        const onError = (err: Error) => {
          this.out.off('drain', onDrain);
          reject(err);
        };
        this.out.once('drain', onDrain);
        this.out.once('error', onError);
      });
    }
  }

  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve, reject) => {
      this.out.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  destroy(): void {
    this.out.destroy();
  }
}
