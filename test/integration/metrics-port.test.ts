/**
 * A worker process (no api role, as docker-compose.yml runs it) exposes its own metrics on
 * METRICS_PORT. Job, stall, watchdog and gateway metrics count what one process did, and only the
 * api role listens on PORT: without this, a deployment with one process per role never shows a
 * single charge job or gateway call, and the alerts on them (failed jobs, stalled jobs, workers
 * replaced, gateway errors, credentials refused) can never fire (docs/operations.md, "Metrics").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayment } from '../../src/payments/create.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { findFreePort } from '../support/redis-server.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const PREVIOUS_TOKEN = 'previous-api-token-0123456789';

let sandbox: Sandbox;
let t: TestApp;
let port: number;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  port = await findFreePort();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['worker'],
    env: { METRICS_PORT: String(port), API_TOKEN_PREVIOUS: PREVIOUS_TOKEN },
  });
});

afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

const sample = (text: string, name: string, labels: string) =>
  Number(
    text
      .split('\n')
      .find((l) => l.startsWith(`${name}{`) && l.includes(labels))
      ?.split(' ')
      .at(-1) ?? NaN,
  );

describe('metrics of a process without the api role', () => {
  it('serves the jobs it ran and the gateway calls it made on METRICS_PORT, behind a token', async () => {
    const url = `http://127.0.0.1:${port}/metrics`;
    expect((await fetch(url).catch(() => undefined))?.status).toBe(401);

    const created = await createPayment(createDeps(t.app), {
      type: 'charge',
      key: 'mp1',
      email: 'ada@example.com',
      amount: '25.00',
      currency: 'NGN',
      card_token: 'tok_metrics_port_0123456789',
    });
    expect(created.status).toBe('created');
    const text = await until(
      async () => {
        const res = await fetch(url, { headers: { authorization: `Bearer ${TEST_API_TOKEN}` } });
        const body = await res.text();
        return sample(body, 'billing_jobs_total', 'queue="charges",outcome="completed"') >= 1
          ? body
          : undefined;
      },
      { what: 'the charge job counted on METRICS_PORT', timeoutMs: 20_000 },
    );
    expect(
      sample(
        text,
        'billing_gateway_request_duration_seconds_count',
        'endpoint="charge",outcome="succeeded"',
      ),
    ).toBe(1);
  });

  it('takes API_TOKEN_PREVIOUS during a rotation, and counts its use', async () => {
    const url = `http://127.0.0.1:${port}/metrics`;
    const scrape = () => fetch(url, { headers: { authorization: `Bearer ${PREVIOUS_TOKEN}` } });
    expect((await scrape()).status).toBe(200);
    const res = await scrape();
    expect(res.status).toBe(200);
    expect(
      sample(await res.text(), 'billing_http_previous_token_requests_total', 'API_TOKEN_PREVIOUS'),
    ).toBeGreaterThanOrEqual(1);
    const wrong = await fetch(url, { headers: { authorization: 'Bearer not-a-token-0123456789' } });
    expect(wrong.status).toBe(401);
  });
});
