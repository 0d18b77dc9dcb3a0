import { describe, expect, it } from 'vitest';
import { sandboxOptionsSchema, startSandbox } from '../../../src/sandbox/index.ts';
import {
  clientRequestFailed,
  countClientRequests,
  serverRequestReached,
} from '../../support/http-events.ts';
import { until } from '../../support/poll.ts';
import {
  callSandbox,
  chargeBody,
  payoutBody,
  startTestSandbox,
  startWebhookReceiver,
} from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';

describe('options', () => {
  it('fills the documented defaults', () => {
    expect(sandboxOptionsSchema.parse({})).toEqual({
      port: 4010,
      host: '127.0.0.1',
      secretKey: 'sk_test_sandbox',
      settleMs: 2000,
      hangMs: 60_000,
      latencyMs: 0,
      faultRate: 0,
      refundFault: 'none',
      seed: 1,
      webhookDuplicates: 1,
      webhookShuffle: false,
      webhookShuffleWindowMs: 100,
    });
    expect(sandboxOptionsSchema.parse({ encryption: { key: 'k', iv: 'i' } }).encryption).toEqual({
      key: 'k',
      iv: 'i',
      encoding: 'hex',
    });
  });

  it.each([
    [{ faultRate: 1.5 }],
    [{ faultRate: -0.1 }],
    [{ port: 70_000 }],
    [{ webhookDuplicates: 0 }],
    [{ webhookUrl: 'ftp://example.com/hook' }],
    [{ settleMs: -1 }],
  ])('refuses %j', async (bad) => {
    expect(sandboxOptionsSchema.safeParse(bad).success).toBe(false);
    await expect(startSandbox({ port: 0, ...bad })).rejects.toThrow();
  });
});

describe('start', () => {
  it('serves on the returned url and port', async () => {
    const sb = await startTestSandbox();
    try {
      expect(sb.port).toBeGreaterThan(0);
      expect(sb.url).toBe(`http://127.0.0.1:${sb.port}`);
      expect((await callSandbox(sb, '/api/v1/bank_list')).status).toBe(200);
    } finally {
      await sb.close();
    }
  });

  it('rejects when the port is taken', async () => {
    const sb = await startTestSandbox();
    try {
      await expect(startSandbox({ port: sb.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await sb.close();
    }
  });

  it('delays every API response by latencyMs, but not the ledger', async () => {
    // The sandbox's own timers order the events, not our clock: a 52 settles settleMs after it is
    // recorded, and settleMs < latencyMs, so anything held for latencyMs from a later instant is
    // released only after that settlement.
    const sb = await startTestSandbox({ latencyMs: 1_500, settleMs: 1_000 });
    try {
      const charged = await callSandbox(sb, CHARGE, { body: chargeBody('lat_52', '10.52') });
      expect(charged.status).toBe(200);
      expect(charged.body.data.status).toBe('pending');
      // An API call made after the 52 was recorded is answered only after it settled.
      const banks = await callSandbox(sb, '/api/v1/bank_list');
      expect(banks.status).toBe(200);
      expect(sb.ledger().references.lat_52).toMatchObject({ status: 'success' });
    } finally {
      await sb.close();
    }
    // The ledger is not held: asked while an API call waits out a latency longer than the test,
    // it answers. (It was shown by a ledger still pending for the 52 above, which held only if the
    // test asked within the 1 s settlement; a loaded machine sometimes asked later.)
    const held = await startTestSandbox({ latencyMs: 60_000 });
    try {
      const reached = serverRequestReached(held.port, '/api/v1/bank_list');
      let answered = false;
      const waiting = callSandbox(held, '/api/v1/bank_list').then(
        () => (answered = true),
        () => 'dropped',
      );
      await reached;
      const ledger = await callSandbox(held, '/__sandbox/ledger');
      expect(ledger.status).toBe(200);
      expect(ledger.body).toEqual(held.ledger());
      expect(answered).toBe(false);
      await held.close();
      expect(await waiting).toBe('dropped');
    } finally {
      await held.close();
    }
  }, 15_000);
});

// "Promptly" below: what close() could wait for (a 60 s hold, settlement or latency) is far past
// the 5 s test timeout, so a close() that waited for it fails the test without timing anything.
describe('close', () => {
  it('returns promptly with a held 55 response and drops the client connection', async () => {
    const sb = await startTestSandbox(); // hangMs stays at 60 s
    const held = callSandbox(sb, CHARGE, { body: chargeBody('held_1', '10.55') });
    const outcome = held.then(
      () => 'answered',
      () => 'dropped',
    );
    await until(() => sb.ledger().references.held_1, { what: 'held_1 recorded' });
    await sb.close();
    expect(await outcome).toBe('dropped');
  });

  it('returns promptly with latency, settlements and a retrying webhook pending', async () => {
    const probe = await startWebhookReceiver();
    await probe.close(); // dead receiver: deliveries retry with backoff
    const port = Number(new URL(probe.url).port);
    const attempts = countClientRequests(port);
    try {
      const firstFailure = clientRequestFailed(port);
      const sb = await startTestSandbox({ settleMs: 60_000, webhookUrl: probe.url });
      await callSandbox(sb, CHARGE, { body: chargeBody('pending_1', '10.52') });
      await callSandbox(sb, '/api/v1/bank_transfer', { body: payoutBody('pending_2', '10.58') });
      // 58's success webhook failed once: its retry is scheduled RETRY_BASE_MS later.
      await firstFailure;
      await sb.close();
      // Timers were cleared, not waited out: close() returned before any retry was made, and
      // nothing settles after close.
      expect(attempts()).toBe(1);
      expect(sb.ledger().references.pending_1).toMatchObject({ status: 'pending' });
    } finally {
      attempts.stop();
    }
  });

  it('aborts requests waiting out latencyMs', async () => {
    const sb = await startTestSandbox({ latencyMs: 60_000 });
    // The request must have reached the server before close for this to test anything.
    const reached = serverRequestReached(sb.port, '/api/v1/bank_list');
    const waiting = callSandbox(sb, '/api/v1/bank_list').then(
      () => 'answered',
      () => 'dropped',
    );
    await reached;
    await sb.close();
    expect(await waiting).toBe('dropped');
  });

  it('is idempotent', async () => {
    const sb = await startTestSandbox();
    await Promise.all([sb.close(), sb.close()]);
    await sb.close();
    await expect(fetch(`${sb.url}/__sandbox/ledger`)).rejects.toThrow();
  });
});
