import { afterEach, describe, expect, it } from 'vitest';
import type { DuplicateAnswer, Sandbox } from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import { callSandbox, chargeBody, payoutBody, startTestSandbox } from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const PAYOUT = '/api/v1/bank_transfer';

const open: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function sandbox(duplicateReference: DuplicateAnswer, extra = {}): Promise<Sandbox> {
  const sb = await startTestSandbox({ duplicateReference, ...extra });
  open.push(sb);
  return sb;
}

describe.each([
  ['charge', CHARGE, chargeBody],
  ['payout', PAYOUT, payoutBody],
] as const)('duplicate %s reference', (kind, path, body) => {
  it.each([
    ['409', 409, 'Duplicate reference'],
    ['400', 400, 'Validation failed: reference: has already been taken'],
    ['200-failure', 200, 'Duplicate reference'],
    ['400-opaque', 400, 'Validation failed'],
  ] as const)('%s: answers %i success:false and moves nothing', async (variant, http, message) => {
    const sb = await sandbox(variant);
    const first = await callSandbox(sb, path, { body: body('d_1', '10') });
    expect(first.status).toBe(200);
    const again = await callSandbox(sb, path, { body: body('d_1', '10') });
    expect(again.status).toBe(http);
    expect(again.body).toEqual({ success: false, message });
    const ledger = sb.ledger();
    expect(ledger.references.d_1).toMatchObject({ moneyMoved: true, amount: 1000 });
    expect(ledger.totals.NGN).toEqual({ movedMinor: 1000, count: 1 });
    expect(ledger.activity.d_1).toEqual({
      submissions: 2,
      duplicates: 1,
      moves: 1,
      reversals: 0,
      statuses: ['success'],
    });
  });

  it('200-echo: answers the original transaction again, whatever the duplicate carries', async () => {
    const sb = await sandbox('200-echo');
    const first = await callSandbox(sb, path, { body: body('d_echo', '10') });
    // A different amount on the retry: the echo still shows the first submission's.
    const again = await callSandbox(sb, path, { body: body('d_echo', '75') });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(sb.ledger().totals.NGN).toEqual({ movedMinor: 1000, count: 1 });
    expect(sb.ledger().activity.d_echo).toMatchObject({ submissions: 2, duplicates: 1, moves: 1 });
  });

  it('200-echo: shows the current status, not the one first answered', async () => {
    const sb = await sandbox('200-echo');
    const first = await callSandbox(sb, path, { body: body('d_pend', '10.52') });
    expect(first.body.data.status).toBe('pending');
    await until(() => sb.ledger().references.d_pend?.status === 'success', { what: 'settled' });
    const again = await callSandbox(sb, path, { body: body('d_pend', '10.52') });
    expect(again.status).toBe(200);
    expect(again.body.data).toMatchObject({ reference: 'd_pend', status: 'success' });
  });

  it('200-echo after a 54 (money moved, then 500): the retry learns the success', async () => {
    const sb = await sandbox('200-echo');
    expect((await callSandbox(sb, path, { body: body('d_54', '10.54') })).status).toBe(500);
    const again = await callSandbox(sb, path, { body: body('d_54', '10.54') });
    expect(again.status).toBe(200);
    expect(again.body.data).toMatchObject({ reference: 'd_54', status: 'success' });
    expect(sb.ledger().activity.d_54).toMatchObject({ submissions: 2, duplicates: 1, moves: 1 });
  });
});

describe('duplicate bookkeeping', () => {
  it('counts unrecorded tries as submissions but not as duplicates', async () => {
    const sb = await sandbox('409');
    expect((await callSandbox(sb, CHARGE, { body: chargeBody('d_56', '10.56') })).status).toBe(500);
    expect((await callSandbox(sb, CHARGE, { body: chargeBody('d_57', '10.57') })).status).toBe(429);
    expect((await callSandbox(sb, CHARGE, { body: chargeBody('d_57', '10.57') })).status).toBe(200);
    const ledger = sb.ledger();
    expect(ledger.references.d_56).toBeUndefined();
    expect(ledger.activity.d_56).toEqual({
      submissions: 1,
      duplicates: 0,
      moves: 0,
      reversals: 0,
      statuses: [],
    });
    expect(ledger.activity.d_57).toMatchObject({ submissions: 2, duplicates: 0, moves: 1 });
  });

  it('a reference reused across kinds is a duplicate too; echo answers the existing kind', async () => {
    const sb = await sandbox('200-echo');
    await callSandbox(sb, CHARGE, { body: chargeBody('d_x', '10') });
    const res = await callSandbox(sb, PAYOUT, { body: payoutBody('d_x', '10') });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: true, data: { reference: 'd_x', fees: '0.12' } });
    expect(sb.ledger().references.d_x).toMatchObject({ kind: 'charge' });
  });

  it('echo keeps payout account details from the first request', async () => {
    const sb = await sandbox('200-echo');
    await callSandbox(sb, PAYOUT, { body: payoutBody('d_acct', '10') });
    const res = await callSandbox(sb, PAYOUT, {
      body: { ...payoutBody('d_acct', '10'), account_number: '9999999999' },
    });
    expect(res.body.data).toMatchObject({ account_number: '0123456789', bank_code: '000013' });
  });
});
