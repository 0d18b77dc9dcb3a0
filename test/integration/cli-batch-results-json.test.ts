/**
 * `billing batch results --json` gives the rows' values as they are: the `'` the CSV writer puts
 * before a cell starting with `=`, `+`, `-`, `@` (formula injection, results-csv.ts) protects
 * spreadsheets and stays in the CSV, never in the JSON.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';

const CSV = [
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,meta_phone',
  'rj-1,0123456789,058,GTBank,Ada Obi,100.00,NGN,json,+2348012345678',
  'rj-2,0123456789,058,GTBank,Ada Obi,100.00,NGN,json,-5',
  'rj-3,0123456789,058,GTBank,Ada Obi,100.00,NGN,json,@home',
  "rj-4,0123456789,058,GTBank,Ada Obi,100.00,NGN,json,'quoted",
  'rj-5,0123456789,058,GTBank,Ada Obi,100.00,NGN,json,08012345678',
].join('\n');
const PHONES = ['+2348012345678', '-5', '@home', "'quoted", '08012345678'];

let t: TestApp;
let dir: string;

beforeAll(async () => {
  // No roles: the rows stay queued; the test reads what was submitted.
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
  dir = await mkdtemp(join(tmpdir(), 'cli-results-json-'));
  await writeFile(join(dir, 'payouts.csv'), `${CSV}\n`);
  const r = await runCliInProcess(t.app.config, [
    'batch',
    'submit',
    join(dir, 'payouts.csv'),
    '--type',
    'payout',
    '--id',
    'rjb',
  ]);
  expect(r.code, r.err).toBe(0);
});

afterAll(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

describe('billing batch results', () => {
  it('--json: the values without the CSV formula escape', async () => {
    const r = await runCliInProcess(t.app.config, ['batch', 'results', 'rjb', '--json']);
    expect(r.code, r.err).toBe(0);
    const rows = JSON.parse(r.out) as Record<string, string>[];
    expect(rows.map((row) => row.meta_phone)).toEqual(PHONES);
    expect(rows.map((row) => row.reference)).toEqual(['rj-1', 'rj-2', 'rj-3', 'rj-4', 'rj-5']);
  });

  it('the CSV keeps the escape', async () => {
    const r = await runCliInProcess(t.app.config, ['batch', 'results', 'rjb']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(",'+2348012345678\r\n");
    expect(r.out).toContain(",'-5\r\n");
    expect(r.out).toContain(",'quoted\r\n");
  });
});
