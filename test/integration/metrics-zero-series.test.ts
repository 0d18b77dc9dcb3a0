/**
 * The counters the documented alerts watch with `increase(…) > 0` (docs/operations.md, "Alerts
 * worth setting": failed jobs, stalled jobs, workers replaced, metrics blind, gateway credentials
 * refused) are exported at 0 from the start, for every label set known in advance. Prometheus
 * computes `increase()` from the samples it has: a series that first appears at 1 shows no
 * increase, so the first failed job, the first stalled job or the one worker replacement of a
 * process would never fire its alert (and for these rare events the first is often the only one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { parseMetrics, type Sample } from '../support/metrics-text.ts';

const find = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );

let t: TestApp;

beforeAll(async () => {
  // No payment is made: the gateway is never called.
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: ['worker', 'reconciler'] });
});

afterAll(async () => {
  await t?.close();
});

describe('alerting counters before their first event', () => {
  it('exports each alert counter at 0 for every queue this process works', async () => {
    const samples = parseMetrics(await t.app.metrics.registry.metrics());
    const missing: string[] = [];
    const expectZero = (name: string, labels: Record<string, string>) => {
      const s = find(samples, name, labels);
      if (s?.value !== 0) missing.push(`${name}${JSON.stringify(labels)}`);
    };
    for (const queue of ['charges', 'payouts', 'reconcile']) {
      expectZero('billing_jobs_total', { queue, outcome: 'failed' });
      expectZero('billing_jobs_total', { queue, outcome: 'completed' });
      expectZero('billing_jobs_stalled_total', { queue });
      expectZero('billing_workers_replaced_total', { queue });
    }
    expectZero('billing_metrics_collect_errors_total', { collector: 'intents' });
    expectZero('billing_metrics_collect_errors_total', { collector: 'queues' });
    for (const endpoint of ['charge', 'payout', 'verify', 'payout_lookup']) {
      expectZero('billing_gateway_request_duration_seconds_count', {
        endpoint,
        outcome: 'auth_failure',
      });
    }
    expect(missing, 'series absent (or not 0) before their first event').toEqual([]);
  });
});
