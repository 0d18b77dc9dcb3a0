/**
 * Text an API caller sends that the CLI later prints to an operator's terminal is one line of
 * text: the batch `name` (`billing batch status`, `batch submit --wait`) and a refund's `reason`
 * (`billing payments refunds`). A line break or an escape sequence there would forge the lines the
 * CLI prints after it: e.g. `\e[8m` (conceal) hides the real row counts and amounts, and a line
 * break adds invented ones, in front of the second person who approves the batch
 * (BATCH_APPROVAL). Refused like a narration with a control character, and nothing is stored.
 * Real HTTP to the api role, real Redis, the sandbox.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Intent } from '../../src/kernel/payment.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { apiCall } from '../support/api-call.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { uploadCsv } from '../support/batch-http.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox, type LooseJson } from '../support/sandbox.ts';

const CSV = readFileSync(new URL('../../examples/payouts.csv', import.meta.url), 'utf8');
/** Conceal everything printed after it, then a forged line. */
const FORGED = 'payroll.csv): awaiting_approval\n  rows 1 (1 valid, 0 invalid)\u001b[8m';

let sandbox: Sandbox;
let t: TestApp;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['api', 'worker', 'reconciler'] });
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

describe('POST /batches name', () => {
  it.each([
    ['an escape sequence and a line break', FORGED],
    ['a carriage return', 'payouts.csv\r'],
    ['a C1 control (CSI)', 'payouts\u009b2J.csv'],
  ])('refuses %s, naming the parameter, and stores nothing', async (_what, name) => {
    const res = await uploadCsv(t, CSV, `type=payout&id=termname&name=${encodeURIComponent(name)}`);
    expect(res.status, JSON.stringify(res.json)).toBe(400);
    const body = res.json as { error: { details: { parameter: string; message: string }[] } };
    expect(body.error.details).toEqual([
      expect.objectContaining({
        parameter: 'name',
        message: 'name contains a line break, tab or other control character',
      }),
    ]);
    expect(await t.app.redis.keys(`${t.prefix}:batch*`)).toEqual([]);
    expect(await t.app.redis.keys(`${t.prefix}:intent:*`)).toEqual([]);
  });

  it('still takes a file name with spaces and non-ASCII letters', async () => {
    const res = await uploadCsv(
      t,
      CSV,
      `type=payout&id=termok&validateOnly=true&allowReusedReferences=true&name=${encodeURIComponent('Paie — été 2026.csv')}`,
    );
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  });
});

describe('POST /payments/:key/refunds reason', () => {
  it('refuses a reason with a control character and refunds nothing', async () => {
    const created = await apiCall<LooseJson>(t, 'POST', '/payments', {
      type: 'charge',
      key: 'term-refund',
      email: 'refund@example.com',
      amount: '25.00',
      currency: 'NGN',
      card_token: 'tok_term_0123456789',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const charge = await until(() => t.app.store.get('api_term-refund'), {
      done: (i: Intent | undefined) => i?.state === 'succeeded',
      what: 'the charge succeeded',
      timeoutMs: 20_000,
    });
    expect(charge?.state).toBe('succeeded');

    const refused = await apiCall<LooseJson>(t, 'POST', '/payments/term-refund/refunds', {
      reason: `damaged${'\u001b'}[2K${'\u001b'}[1A  succeeded`,
    });
    expect(refused.status, JSON.stringify(refused.body)).toBe(422);
    expect(refused.body.error.details).toEqual([
      { field: 'reason', message: 'reason contains a line break, tab or other control character' },
    ]);
    const summary = await apiCall<LooseJson>(t, 'GET', '/payments/term-refund/refunds');
    expect(summary.body).toMatchObject({ refundedMinor: 0, refunds: [] });
    expect(await t.app.store.get('rf1_api_term-refund')).toBeUndefined();

    // Surrounding white space is still trimmed, as before.
    const ok = await apiCall<LooseJson>(t, 'POST', '/payments/term-refund/refunds', {
      reason: ' damaged \n',
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.reason).toBe('damaged');
  });
});
