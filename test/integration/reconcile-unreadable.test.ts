/**
 * A verify the gateway answers in a form we cannot read (a body that does not parse or match the
 * schema, a 404 without an envelope, an answer about another reference, a redirect, a 400) is a
 * check that learned nothing final: it counts against RECONCILE_SCHEDULE like a `pending`, so an
 * answer that stays unreadable ends in `needs_review`, never `failed` and never a new attempt. Before, the check
 * threw, the job retried and the sweep re-enqueued it, and the payment stayed `unknown` forever
 * without reaching anyone's queue. A gateway we cannot reach (a 503) is not a check: the job
 * retries and the schedule does not move. Real HTTP to a stub gateway, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import { OutcomeUnknownError, UnreadableAnswerError } from '../../src/kernel/errors.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { unresolvedTestCharge } from '../support/intents.ts';
import {
  quietHandlerContext,
  startStubGateway,
  type StubAnswer,
  type StubGateway,
} from '../support/stub-gateway.ts';

type Mode = 'unparsable' | 'bare404' | 'redirect' | 'refused' | 'down';
let mode: Mode = 'unparsable';
let asked = 0;
let gateway: StubGateway;
let t: TestApp;

/** What the stub answers in each mode. */
function answer(): StubAnswer {
  asked++;
  switch (mode) {
    case 'down':
      return { status: 503, body: { success: false } };
    case 'redirect':
      return { status: 302, headers: { location: '/elsewhere' } };
    case 'refused':
      return { status: 400, body: { success: false, message: 'Bad request' } };
    case 'bare404':
      return { status: 404, body: { message: 'Not Found' } };
    case 'unparsable':
      return {
        status: 200,
        headers: { 'content-type': 'text/html' },
        body: '<html>maintenance</html>',
      };
  }
}

beforeAll(async () => {
  gateway = await startStubGateway(answer);
  t = await startTestApp({ sandboxUrl: gateway.url, roles: [] });
});
afterAll(async () => {
  await t?.close();
  await gateway?.close();
});

const ctx = quietHandlerContext;

describe('a verify answer we cannot read', () => {
  for (const m of ['unparsable', 'bare404', 'redirect', 'refused'] as const) {
    it(`(${m}) counts as a check, and the schedule ends in needs_review: never failed, never a new attempt`, async () => {
      mode = m;
      const key = await unresolvedTestCharge(t.app.store, `unreadable-${m}`);
      const check = createReconcileHandler(paymentsDeps(t.app));
      const before = asked;
      let rounds = 0;
      for (; rounds < 100; rounds++) {
        const intent = await t.app.store.get(key);
        if (intent?.state !== 'unknown') break;
        // As the scheduled chain does: each check carries the count it was scheduled with.
        await check({ key, cause: 'schedule', checks: intent.checks }, ctx);
        const now = await t.app.store.get(key);
        if (now?.state === 'unknown') expect(now.checks).toBe(intent.checks + 1);
      }
      const after = await t.app.store.get(key);
      expect(after).toMatchObject({ state: 'needs_review', attempt: 1, reference: `${key}_1` });
      expect((await t.app.store.history(key)).at(-1)).toMatchObject({
        to: 'needs_review',
        reason: 'reconcile_exhausted',
      });
      // Every check asked the gateway once; no submission was made.
      expect(asked - before).toBe(rounds);
      expect(rounds).toBeGreaterThan(1);
    });
  }

  it('a gateway we cannot reach (503) is not a check: the job retries, the schedule stays', async () => {
    mode = 'down';
    const key = await unresolvedTestCharge(t.app.store, 'unreachable');
    const check = createReconcileHandler(paymentsDeps(t.app));
    const run = check({ key, cause: 'schedule', checks: 0 }, ctx);
    await expect(run).rejects.toBeInstanceOf(OutcomeUnknownError);
    await expect(run).rejects.not.toBeInstanceOf(UnreadableAnswerError);
    expect(await t.app.store.get(key)).toMatchObject({ state: 'unknown', checks: 0 });
  });
});
