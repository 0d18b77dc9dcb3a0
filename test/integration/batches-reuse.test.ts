/**
 * Row references across batches (issue 13): a reference another batch of the type already used is
 * refused, naming that batch and line, unless reuse is allowed explicitly; submitting the same
 * content again is no reuse; and two different files submitted at the same moment never both pay
 * one reference — judged by the sandbox ledger.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitBatch, type SubmitBatchResult } from '../../src/batches/ingest.ts';
import { batchStatus } from '../../src/batches/status.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { runBilling } from '../support/child.ts';
import {
  batchCliEnv,
  uploadCsv,
  waitBatchCompleted,
  batchResultRows,
} from '../support/batch-http.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox;
let t: TestApp;
let dir: string;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['worker', 'reconciler', 'api'] });
  dir = await mkdtemp(join(tmpdir(), 'batches-reuse-'));
});

afterAll(async () => {
  await t.close();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
});

const HEADER =
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,meta_note';

/** A payout file of rows that succeed in the sandbox (`.00`); `note` makes its content unique. */
function payouts(references: readonly string[], note: string): string {
  const lines = references.map(
    (ref, i) => `${ref},0123456789,058,GTBank,Ada Obi,${200 + i}.00,NGN,pay ${ref},${note}`,
  );
  return `${[HEADER, ...lines].join('\n')}\n`;
}

const refs = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}-${i + 1}`);

/** Times money moved per row reference and batch id, from the ledger. */
function moves(): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const [ref, activity] of Object.entries(sandbox.ledger().activity)) {
    const m = /^bat_([A-Za-z0-9-]+)_(.+)_\d+$/.exec(ref);
    if (m === null || activity.moves === 0) continue;
    const perBatch = out.get(m[2]!) ?? new Map<string, number>();
    perBatch.set(m[1]!, (perBatch.get(m[1]!) ?? 0) + activity.moves);
    out.set(m[2]!, perBatch);
  }
  return out;
}

const totalMoves = (reference: string) =>
  [...(moves().get(reference)?.values() ?? [])].reduce((a, b) => a + b, 0);

async function created(csv: string, opts: Partial<Parameters<typeof submitBatch>[1]> = {}) {
  const r = await submitBatch(t.app, { input: csv, type: 'payout', ...opts });
  expect(r.status, r.message).toBe('created');
  return r.batchId!;
}

describe('a reference another batch used is refused, naming that batch and line', () => {
  it('CLI and HTTP refuse the file and change nothing; the flag accepts it', async () => {
    const first = await created(payouts(refs('ru', 5), 'first'));
    await waitBatchCompleted(t, first);
    const before = await t.app.batches.countByState();

    // ru-3 is on line 4 of the first file; here on line 3 (and in another case: references
    // are compared ignoring case).
    const file = join(dir, 'second.csv');
    await writeFile(file, payouts(['ru-new-1', 'RU-3', 'ru-new-2'], 'second'));
    const env = await batchCliEnv(t, sandbox);
    const cli = await runBilling(['batch', 'submit', file, '--type', 'payout'], env);
    expect(cli.code, cli.output).toBe(2);
    expect(cli.output).toContain(
      `${file}: line 3, reference: reference "RU-3" is already used by payout batch ${first} line 4`,
    );
    expect(cli.output).toContain('--allow-reused-references');

    const http = await uploadCsv(t, payouts(['ru-new-1', 'ru-3'], 'second'), 'type=payout');
    expect(http.status).toBe(422);
    expect((http.json.error as { details: unknown[] }).details).toEqual([
      {
        line: 3,
        column: 'reference',
        message: `reference "ru-3" is already used by payout batch ${first} line 4`,
      },
    ]);
    // --validate-only says the same, storing nothing.
    const checked = await submitBatch(t.app, {
      input: payouts(['ru-3'], 'third'),
      type: 'payout',
      validateOnly: true,
    });
    expect(checked).toMatchObject({ status: 'invalid', errorCount: 1 });
    // A refused file changed nothing: no batch, no claim (ru-new-1 is still free).
    expect(await t.app.batches.countByState()).toEqual(before);
    expect(await t.app.batches.referenceHolders('payout', ['ru-new-1', 'ru-3'])).toEqual([
      undefined,
      { batchId: first, line: 4 },
    ]);
    // Another type has its own references.
    expect(await t.app.batches.referenceHolders('charge', ['ru-3'])).toEqual([undefined]);

    // Submitting the first file again is the same batch, not a reuse.
    const again = await uploadCsv(t, payouts(refs('ru', 5), 'first'), 'type=payout');
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ batchId: first, status: 'existing' });

    const allowed = await runBilling(
      ['batch', 'submit', file, '--type', 'payout', '--allow-reused-references'],
      env,
    );
    expect(allowed.code, allowed.output).toBe(0);
    const second = /batch ([0-9a-f]{16}) created: 3 rows queued/.exec(allowed.output)?.[1];
    expect(second, allowed.output).toBeDefined();
    const viaHttp = await uploadCsv(
      t,
      payouts(['ru-new-3', 'ru-4'], 'fourth'),
      'type=payout&allowReusedReferences=true',
    );
    expect(viaHttp.status, JSON.stringify(viaHttp.json)).toBe(201);
    await waitBatchCompleted(t, second!);
    await waitBatchCompleted(t, viaHttp.json.batchId as string);
    // Paid again, as asked; the reference stays the first batch's.
    expect(moves().get('ru-3')).toEqual(new Map([[first, 1]]));
    expect(moves().get('RU-3')).toEqual(new Map([[second, 1]]));
    expect(totalMoves('ru-4')).toBe(2);
    expect(await t.app.batches.referenceHolders('payout', ['ru-3'])).toEqual([
      { batchId: first, line: 4 },
    ]);
  });

  it('with --skip-invalid the reused row is recorded as invalid and the others are paid', async () => {
    const first = await created(payouts(refs('sk', 3), 'first'));
    const r = await submitBatch(t.app, {
      input: payouts(['sk-x', 'sk-2', 'sk-y'], 'second'),
      type: 'payout',
      skipInvalid: true,
    });
    expect(r).toMatchObject({ status: 'created', totals: { rows: 3, valid: 2, invalid: 1 } });
    expect(r.errors).toEqual([
      {
        line: 3,
        column: 'reference',
        message: `reference "sk-2" is already used by payout batch ${first} line 3`,
      },
    ]);
    const id = r.batchId!;
    const done = await waitBatchCompleted(t, id);
    expect(done).toMatchObject({ rows: 3, valid: 2, invalid: 1, final: 2 });
    expect(done.totals.NGN).toMatchObject({ rows: 2, amountMinor: 40200 });
    const rows = await batchResultRows(t, id);
    expect(rows.map((row) => [row.line, row.reference, row.status])).toEqual([
      ['2', 'sk-x', 'succeeded'],
      ['3', 'sk-2', 'invalid'],
      ['4', 'sk-y', 'succeeded'],
    ]);
    expect(rows[1]?.reason).toBe(
      `reference: reference "sk-2" is already used by payout batch ${first} line 3`,
    );
    expect(rows[1]?.meta_note).toBe('second');
    await waitBatchCompleted(t, first);
    expect(moves().get('sk-2')).toEqual(new Map([[first, 1]]));

    // Only reused rows: nothing valid is left, so nothing is enqueued.
    const none = await submitBatch(t.app, {
      input: payouts(['sk-1'], 'third'),
      type: 'payout',
      skipInvalid: true,
    });
    expect(none).toMatchObject({
      status: 'invalid',
      message: 'no row is valid; nothing was enqueued',
    });
  });
});

describe('a resumed ingest decides as the first one did', () => {
  it('refused rows are recorded and counted once across a crash and its resumption', async () => {
    const first = await created(payouts(refs('cr', 4), 'first'));
    const csv = payouts(['crx-1', 'cr-2', 'crx-2', 'cr-4', 'crx-3'], 'second');
    const opts = { input: csv, type: 'payout' as const, id: 'reuse-crash', skipInvalid: true };
    await expect(
      submitBatch(t.app, opts, {
        chunkSize: 2,
        leaseMs: 300,
        afterChunk: (n) => {
          if (n === 2) throw new Error('simulated crash after 2 chunks');
        },
      }),
    ).rejects.toThrow('simulated crash');
    expect(await batchStatus(t.app, 'reuse-crash')).toMatchObject({ valid: 3, invalid: 2 });

    const resumed = await submitBatch(t.app, opts, { chunkSize: 2, leaseMs: 300, pollMs: 50 });
    expect(resumed).toMatchObject({ status: 'resumed', totals: { valid: 3, invalid: 2 } });
    expect(resumed.errors.map((e) => [e.line, e.message])).toEqual([
      [3, `reference "cr-2" is already used by payout batch ${first} line 3`],
      [5, `reference "cr-4" is already used by payout batch ${first} line 5`],
    ]);
    const done = await waitBatchCompleted(t, 'reuse-crash');
    expect(done).toMatchObject({ rows: 5, valid: 3, invalid: 2, final: 3 });
    expect(done.totals.NGN?.rows).toBe(3);
    const rows = await batchResultRows(t, 'reuse-crash');
    expect(rows.map((row) => row.status)).toEqual([
      'succeeded',
      'invalid',
      'succeeded',
      'invalid',
      'succeeded',
    ]);
    await waitBatchCompleted(t, first);
    for (const ref of ['cr-2', 'cr-4']) expect(moves().get(ref)).toEqual(new Map([[first, 1]]));
  });
});

describe('two different batches sharing references at the same moment', () => {
  /** Every shared reference paid exactly once, by one of the two batches; the other refused it. */
  async function expectEachPaidOnce(ids: string[], shared: readonly string[]) {
    for (const id of ids) await waitBatchCompleted(t, id);
    const results = await Promise.all(ids.map((id) => batchResultRows(t, id)));
    for (const reference of shared) {
      expect(totalMoves(reference), `${reference} moved`).toBe(1);
      const holders = results.map((rows) =>
        rows.find((row) => row.reference === reference && row.status === 'succeeded'),
      );
      expect(holders.filter(Boolean), reference).toHaveLength(1);
    }
  }

  it('both pass the check, then race their claims: each reference is paid once', async () => {
    const shared = refs('race', 12);
    const a = payouts([...shared, ...refs('ra', 4)], 'a');
    const b = payouts([...refs('rb', 4), ...[...shared].reverse()], 'b');
    // Both submissions wait here until both have looked the references up (all free), so the
    // atomic claim as rows are enqueued is what decides.
    let arrived = 0;
    let release!: () => void;
    const bothChecked = new Promise<void>((resolve) => (release = resolve));
    const afterCheck = async () => {
      if (++arrived === 2) release();
      await bothChecked;
    };
    const tuning = { chunkSize: 3, afterCheck };
    const [ra, rb] = await Promise.all([
      submitBatch(t.app, { input: a, type: 'payout' }, tuning),
      submitBatch(t.app, { input: b, type: 'payout' }, tuning),
    ]);
    expect([ra.status, rb.status]).toEqual(['created', 'created']);
    // Every shared row lost by one batch is listed (and recorded) as refused by it.
    expect(ra.totals.invalid + rb.totals.invalid).toBe(shared.length);
    for (const r of [ra, rb] as SubmitBatchResult[]) {
      for (const e of r.errors) expect(e.message).toMatch(/is already used by payout batch/);
    }
    await expectEachPaidOnce([ra.batchId!, rb.batchId!], shared);
    const [sa, sb] = await Promise.all([ra, rb].map((r) => batchStatus(t.app, r.batchId!)));
    expect((sa?.valid ?? 0) + (sb?.valid ?? 0)).toBe(8 + shared.length);
    expect((sa?.final ?? 0) + (sb?.final ?? 0)).toBe(8 + shared.length);
  });

  it('over HTTP at the same time: each shared reference is paid once', async () => {
    const shared = refs('hr', 10);
    const [a, b] = await Promise.all([
      uploadCsv(t, payouts([...shared, 'hra-1'], 'a'), 'type=payout'),
      uploadCsv(t, payouts(['hrb-1', ...shared], 'b'), 'type=payout'),
    ]);
    const statuses = [a.status, b.status].sort();
    // Either both were created (the claims decided), or one was refused by the other's claims.
    expect([
      [201, 201],
      [201, 422],
    ]).toContainEqual(statuses);
    const ids = [a, b].filter((r) => r.status === 201).map((r) => r.json.batchId as string);
    await expectEachPaidOnce(ids, shared);
  });
});
