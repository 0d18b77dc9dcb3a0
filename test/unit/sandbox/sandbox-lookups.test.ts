import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox, SandboxOptionsInput } from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import { callSandbox, chargeBody, payoutBody, startTestSandbox } from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const PAYOUT = '/api/v1/bank_transfer';
const VERIFY = '/api/v1/transaction/verify';
const VERIFY_S2S = '/api/s2s/v1/transaction/verify';
const LOOKUP = '/api/v1/payout';

const open: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function sandbox(opts: SandboxOptionsInput): Promise<Sandbox> {
  const sb = await startTestSandbox(opts);
  open.push(sb);
  return sb;
}

describe('not-found shape', () => {
  it.each([
    ['404', 404],
    ['200-failure', 200],
  ] as const)(
    '%s: unknown references answer HTTP %i with the failure body',
    async (notFound, http) => {
      const sb = await sandbox({ notFound });
      for (const base of [VERIFY, VERIFY_S2S]) {
        const res = await callSandbox(sb, `${base}/missing_1`);
        expect(res.status).toBe(http);
        expect(res.body).toEqual({
          success: false,
          message: 'Transaction not found',
          error: 'No transaction found with reference: missing_1',
        });
      }
      const payout = await callSandbox(sb, `${LOOKUP}/missing_1`);
      expect(payout.status).toBe(http);
      expect(payout.body).toEqual({ success: false, message: 'Payout not found' });
      // A reference of the other kind is not found either.
      await callSandbox(sb, CHARGE, { body: chargeBody('nf_c', '10') });
      expect((await callSandbox(sb, `${LOOKUP}/nf_c`)).status).toBe(http);
      // Unknown routes keep their 404 whatever the variant: only lookups change.
      expect((await callSandbox(sb, '/api/v1/nothing-here')).status).toBe(404);
    },
  );
});

describe('lookup lag', () => {
  it('hides a recorded reference from verify and payout lookup while the lag lasts', async () => {
    // Long enough never to pass during the test.
    const sb = await sandbox({ lookupLagMs: 600_000 });
    const charge = await callSandbox(sb, CHARGE, { body: chargeBody('lag_c', '10') });
    const payout = await callSandbox(sb, PAYOUT, { body: payoutBody('lag_p', '10') });
    expect(charge.body.data.status).toBe('success');
    expect(payout.body.data.status).toBe('success');
    expect((await callSandbox(sb, `${VERIFY}/lag_c`)).status).toBe(404);
    expect((await callSandbox(sb, `${VERIFY_S2S}/lag_c`)).status).toBe(404);
    expect((await callSandbox(sb, `${LOOKUP}/lag_p`)).status).toBe(404);
    // The write side knows it: a resubmission is still a duplicate, and the money moved once.
    expect((await callSandbox(sb, CHARGE, { body: chargeBody('lag_c', '10') })).status).toBe(409);
    expect(sb.ledger().references.lag_c).toMatchObject({ moneyMoved: true });
    expect(sb.ledger().activity.lag_c).toMatchObject({ moves: 1, duplicates: 1 });
  });

  it('with 200 not-found, a hidden reference answers 200 success:false', async () => {
    const sb = await sandbox({ lookupLagMs: 600_000, notFound: '200-failure' });
    await callSandbox(sb, PAYOUT, { body: payoutBody('lag_200', '10') });
    const res = await callSandbox(sb, `${LOOKUP}/lag_200`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: false, message: 'Payout not found' });
  });

  it('shows the reference once the lag has passed', async () => {
    const sb = await sandbox({ lookupLagMs: 30 });
    await callSandbox(sb, CHARGE, { body: chargeBody('lag_short', '10') });
    await callSandbox(sb, PAYOUT, { body: payoutBody('lag_short_p', '10') });
    const found = await until(
      async () => {
        const res = await callSandbox(sb, `${VERIFY}/lag_short`);
        return res.status === 200 ? res : undefined;
      },
      { what: 'lag_short visible to verify' },
    );
    expect(found.body.data).toMatchObject({ reference: 'lag_short', status: 'success' });
    await until(async () => (await callSandbox(sb, `${LOOKUP}/lag_short_p`)).status === 200, {
      what: 'lag_short_p visible to payout lookup',
    });
  });

  it('is scaled by timeScale', async () => {
    const sb = await sandbox({ lookupLagMs: 600_000, timeScale: 0.0001 });
    expect(sb.unknowns.lookupLagMs).toBe(60);
    await callSandbox(sb, CHARGE, { body: chargeBody('lag_scaled', '10') });
    await until(async () => (await callSandbox(sb, `${VERIFY}/lag_scaled`)).status === 200, {
      what: 'lag_scaled visible',
    });
  });
});
