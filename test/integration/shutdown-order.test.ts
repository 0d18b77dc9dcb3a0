/**
 * Graceful shutdown (docs/operations.md "Graceful shutdown") in a process that runs the api and
 * worker roles together: at the signal every worker stops taking jobs, even while the HTTP server
 * still waits for an open request (an upload, a slow webhook sender); and a drain that outlasts
 * the timeout is forced, not waited for. The gateway is a gate the test opens, so nothing here
 * depends on how fast anything runs.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayOutcome, PaymentGateway } from '../../src/kernel/ports.ts';
import { createPayment } from '../../src/payments/create.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of opened.reverse()) await c.close();
  opened.length = 0;
});

/** The api and worker roles at concurrency 2, every charge call held until `open()`. */
async function gatedApp(): Promise<{ t: TestApp; calls: () => number; open: () => void }> {
  const sandbox: Sandbox = await startTestSandbox();
  opened.push(sandbox);
  const t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api', 'worker'],
    env: { WORKER_CONCURRENCY: '2' },
  });
  opened.push({ close: () => t.close() });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let n = 0;
  const gateway: PaymentGateway = t.app.gateway;
  const real = gateway.chargeCard.bind(gateway);
  gateway.chargeCard = async (req): Promise<GatewayOutcome> => {
    n++;
    await gate;
    return real(req);
  };
  return { t, calls: () => n, open: release };
}

async function charges(t: TestApp, n: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await createPayment(createDeps(t.app), {
      type: 'charge',
      key: `stop${i}`,
      email: 'stop@example.com',
      amount: '10.00',
      currency: 'NGN',
      card_token: 'tok_stop_0123456789',
    });
    if (r.status !== 'created') throw new Error(r.status);
    keys.push(r.intent.key);
  }
  return keys;
}

describe('graceful shutdown', () => {
  it('takes no job after the signal while the HTTP server waits for an open request', async () => {
    const { t, calls, open } = await gatedApp();
    const keys = await charges(t, 8);
    // Both slots busy: the two charges in flight wait at the gateway.
    await until(() => Promise.resolve(calls()), {
      done: (n) => n === 2,
      what: 'two charges in flight',
    });

    // A request whose body never finishes: the HTTP server's close waits for it.
    const url = new URL(t.url!);
    const sock = net.connect(Number(url.port), url.hostname);
    await new Promise((resolve) => sock.once('connect', resolve));
    sock.write(
      `POST /payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_API_TOKEN}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"type":`,
    );

    const stopping = t.running.stop(60_000);
    // At the signal, not after the HTTP server closed: every worker stops taking jobs.
    expect(t.running.workers.every((w) => w.isPaused())).toBe(true);
    open();
    const states = () => Promise.all(keys.map(async (k) => (await t.app.store.get(k))?.state));
    await until(states, {
      done: (s) => s.filter((x) => x === 'succeeded').length === 2,
      what: 'the two charges in flight succeeded',
    });
    sock.destroy();
    await stopping;
    // The two in flight finished; none of the six waiting was taken.
    expect((await states()).filter((x) => x === 'queued')).toHaveLength(6);
    expect(calls()).toBe(2);
  });

  it('forces the workers closed when the jobs in flight outlast the timeout', async () => {
    const { t, calls, open } = await gatedApp();
    const keys = await charges(t, 2);
    await until(() => Promise.resolve(calls()), {
      done: (n) => n === 2,
      what: 'two charges in flight',
    });
    // The gate stays shut while stop runs: only a forced close lets it return.
    await t.running.stop(200);
    expect(t.running.workers.every((w) => w.closing !== undefined)).toBe(true);
    // The abandoned handlers still hold the app's store: they record their outcomes before the
    // test closes the app and deletes its keys, or they would write after that cleanup.
    open();
    await until(() => Promise.all(keys.map(async (k) => (await t.app.store.get(k))?.state)), {
      done: (s) => s.every((x) => x === 'succeeded'),
      what: 'the abandoned charges recorded',
    });
  });
});
