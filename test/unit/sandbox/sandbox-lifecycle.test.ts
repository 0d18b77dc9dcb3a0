import { describe, expect, it } from 'vitest';
import { sandboxOptionsSchema, startSandbox } from '../../../src/sandbox/index.ts';
import {
  callSandbox,
  chargeBody,
  eventually,
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
    const sb = await startTestSandbox({ latencyMs: 120 });
    try {
      let t = Date.now();
      await callSandbox(sb, '/api/v1/bank_list');
      expect(Date.now() - t).toBeGreaterThanOrEqual(110);
      t = Date.now();
      await callSandbox(sb, '/__sandbox/ledger');
      expect(Date.now() - t).toBeLessThan(110);
    } finally {
      await sb.close();
    }
  });
});

describe('close', () => {
  it('returns promptly with a held 55 response and drops the client connection', async () => {
    const sb = await startTestSandbox(); // hangMs stays at 60 s
    const held = callSandbox(sb, CHARGE, { body: chargeBody('held_1', '10.55') });
    const outcome = held.then(
      () => 'answered',
      () => 'dropped',
    );
    await eventually(() => sb.ledger().references.held_1);
    const started = Date.now();
    await sb.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await outcome).toBe('dropped');
  });

  it('returns promptly with latency, settlements and a retrying webhook pending', async () => {
    const probe = await startWebhookReceiver();
    await probe.close(); // dead receiver: deliveries retry with backoff
    const sb = await startTestSandbox({ settleMs: 60_000, webhookUrl: probe.url });
    await callSandbox(sb, CHARGE, { body: chargeBody('pending_1', '10.52') });
    await callSandbox(sb, '/api/v1/bank_transfer', { body: payoutBody('pending_2', '10.58') });
    const started = Date.now();
    await sb.close();
    expect(Date.now() - started).toBeLessThan(1000);
    // Timers were cleared: nothing settles after close.
    expect(sb.ledger().references.pending_1).toMatchObject({ status: 'pending' });
  });

  it('aborts requests waiting out latencyMs', async () => {
    const sb = await startTestSandbox({ latencyMs: 60_000 });
    const waiting = callSandbox(sb, '/api/v1/bank_list').then(
      () => 'answered',
      () => 'dropped',
    );
    // The request must have reached the server before close for this to test anything.
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await sb.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await waiting).toBe('dropped');
  });

  it('is idempotent', async () => {
    const sb = await startTestSandbox();
    await Promise.all([sb.close(), sb.close()]);
    await sb.close();
    await expect(fetch(`${sb.url}/__sandbox/ledger`)).rejects.toThrow();
  });
});
