/**
 * A payment that cannot be refunded at all (a charge that has not succeeded, or a payout) is told
 * so, whatever the request asks: `GET …/refunds` shows nothing refundable (it showed the whole
 * amount), and a partial refund with partial refunds off answers 409 `not_refundable` (it answered
 * 422 `partial_refund_not_supported`, which reads as if the whole amount would go through).
 * Nothing is written either way. Real Redis and HTTP; no worker runs, so the charge stays queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCharge } from '../support/intents.ts';
import { apiCall } from '../support/api-call.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: ['api'] });
});
afterAll(async () => {
  await t?.close();
});

const call = (method: 'GET' | 'POST', path: string, body?: unknown) =>
  apiCall(t, method, path, body);

describe('a charge that has not succeeded', () => {
  it('shows nothing refundable, and a partial refund is refused as not refundable', async () => {
    const key = await createTestCharge(t.app.store, 'not-yet');
    const view = await call('GET', `/payments/${key}/refunds`);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ chargedMinor: 1000, refundableMinor: 0, refunds: [] });

    const partial = await call('POST', `/payments/${key}/refunds`, { amount: 100 });
    expect(partial.status).toBe(409);
    expect(partial.body).toMatchObject({ error: { code: 'not_refundable' } });
    const whole = await call('POST', `/payments/${key}/refunds`, {});
    expect(whole.status).toBe(409);
    expect(await t.app.refunds.refundsOf(key)).toEqual([]);
  });
});
