/**
 * Batch identity from content, not bytes (issue 13): the same 50 payout rows saved as LF, CRLF,
 * with a UTF-8 BOM, and quoted with the columns in another order, submitted through the CLI and
 * `POST /batches`, are one batch, and every row is paid exactly once — judged by the sandbox
 * ledger, the truth of what moved. (Before, each encoding was a batch of its own and every row was
 * paid three times.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { runBilling } from '../support/child.ts';
import { batchCliEnv, uploadCsv, waitBatchCompleted } from '../support/batch-http.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox;
let t: TestApp;
let dir: string;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['worker', 'reconciler', 'api'] });
  dir = await mkdtemp(join(tmpdir(), 'batches-identity-'));
});

afterAll(async () => {
  await t.close();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
});

const COLUMNS = [
  'reference',
  'account_number',
  'bank_code',
  'bank_name',
  'account_name',
  'amount',
  'currency',
  'narration',
  'meta_employee',
];

/** 50 payout rows that all succeed in the sandbox (`.00`), references `enc-0001`… */
function rows(): string[][] {
  return Array.from({ length: 50 }, (_, i) => {
    const n = String(i + 1).padStart(4, '0');
    return [
      `enc-${n}`,
      '0123456789',
      '058',
      'GTBank',
      'Ada Obi',
      `${100 + i}.00`,
      'NGN',
      `salary ${n}`,
      `E${n}`,
    ];
  });
}

/** The rows as a file: `order` permutes the columns, `quote` quotes every field. */
function file(
  eol: string,
  opts: { bom?: boolean; quote?: boolean; order?: number[] } = {},
): Buffer {
  const order = opts.order ?? COLUMNS.map((_, i) => i);
  const cell = (v: string) => (opts.quote ? `"${v}"` : v);
  const lines = [COLUMNS, ...rows()].map((r) => order.map((i) => cell(r[i] ?? '')).join(','));
  const text = Buffer.from(lines.join(eol) + eol, 'utf8');
  return opts.bom ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text]) : text;
}

/**
 * Per row reference, the batches whose intents moved money for it and how many times, from the
 * ledger (attempt references are `bat_<batchId>_<reference>_<attempt>`).
 */
function movesByReference(): Map<string, { batches: Set<string>; moves: number }> {
  const ledger = sandbox.ledger();
  const out = new Map<string, { batches: Set<string>; moves: number }>();
  for (const [ref, activity] of Object.entries(ledger.activity)) {
    const m = /^bat_([A-Za-z0-9-]+)_(.+)_\d+$/.exec(ref);
    if (m === null || activity.moves === 0) continue;
    const entry = out.get(m[2]!) ?? { batches: new Set<string>(), moves: 0 };
    entry.batches.add(m[1]!);
    entry.moves += activity.moves;
    out.set(m[2]!, entry);
  }
  return out;
}

describe('three encodings test', () => {
  it('LF, CRLF and BOM (and quoted, reordered) files of the same 50 rows: one batch, each row paid once', async () => {
    const lf = join(dir, 'payouts-lf.csv');
    const crlf = join(dir, 'payouts-crlf.csv');
    await writeFile(lf, file('\n'));
    await writeFile(crlf, file('\r\n'));
    expect(file('\n').equals(file('\r\n'))).toBe(false);
    const env = await batchCliEnv(t, sandbox);

    const first = await runBilling(['batch', 'submit', lf, '--type', 'payout'], env);
    expect(first.code, first.output).toBe(0);
    const id = /batch ([0-9a-f]{16}) created: 50 rows queued/.exec(first.output)?.[1];
    expect(id, first.output).toBeDefined();

    const second = await runBilling(['batch', 'submit', crlf, '--type', 'payout'], env);
    expect(second.code, second.output).toBe(0);
    expect(second.output).toContain(`batch ${id} already exists`);

    const bom = await uploadCsv(t, file('\r\n', { bom: true }), 'type=payout&name=payouts-bom.csv');
    expect(bom.status, JSON.stringify(bom.json)).toBe(200);
    expect(bom.json).toMatchObject({ batchId: id, status: 'existing' });

    const reordered = await uploadCsv(
      t,
      file('\n', { quote: true, order: [8, 7, 6, 5, 4, 3, 2, 1, 0] }),
      'type=payout',
    );
    expect(reordered.status, JSON.stringify(reordered.json)).toBe(200);
    expect(reordered.json).toMatchObject({ batchId: id, status: 'existing' });

    // --validate-only names the same batch id for every encoding.
    const checked = await runBilling(
      ['batch', 'submit', crlf, '--type', 'payout', '--validate-only'],
      env,
    );
    expect(checked.code, checked.output).toBe(0);
    expect(checked.output).toContain(`batch id ${id}`);

    const done = await waitBatchCompleted(t, id!);
    expect(done).toMatchObject({ rows: 50, valid: 50, invalid: 0, final: 50 });
    expect(done.counts.succeeded).toBe(50);
    const counts = await t.app.batches.countByState();
    expect(counts.ingesting + counts.queued + counts.completed).toBe(1);

    const moved = movesByReference();
    for (const [reference] of rows()) {
      const m = moved.get(reference!);
      expect(m?.moves, `${reference} paid ${m?.moves ?? 0} times`).toBe(1);
      expect([...(m?.batches ?? [])]).toEqual([id]);
    }
    expect(sandbox.ledger().totals.NGN?.count).toBe(50);
  });

  it('a changed value is a different batch (whose reused references are refused)', async () => {
    const changed = file('\n').toString('utf8').replace('Ada Obi', 'Ada  Obi');
    const res = await uploadCsv(t, Buffer.from(changed), 'type=payout');
    expect(res.status).toBe(422);
    const error = res.json.error as { details: { line: number; message: string }[] };
    expect(error.details[0]).toMatchObject({ line: 2, column: 'reference' });
    expect(error.details[0]?.message).toMatch(
      /^reference "enc-0001" is already used by payout batch [0-9a-f]{16} line 2$/,
    );
    expect(error.details).toHaveLength(50);
  });
});
