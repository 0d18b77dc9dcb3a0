/**
 * The `batch.completed` example in docs/batches.md is what the service sends: a real batch of
 * payouts (no worker: rows moved to their final states by hand) completes, and the notification
 * body built from its event has exactly the example's fields, at every level.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { readNotification } from '../../src/notifications/deliver.ts';
import { startAppBatchTracker, waitBatchCompleted } from '../support/batch-http.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;

beforeAll(async () => {
  // Nothing reaches the gateway (no worker runs).
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
});
afterAll(async () => {
  await t.close();
});

/** The JSON block after the "## Progress and `batch.completed`" heading of docs/batches.md. */
async function documentedExample(): Promise<Record<string, unknown>> {
  const doc = await readFile(new URL('../../docs/batches.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Progress and `batch.completed`'));
  const block = /```json\n([\s\S]*?)\n```/.exec(section)?.[1];
  if (block === undefined) throw new Error('docs/batches.md: no batch.completed example');
  return JSON.parse(block) as Record<string, unknown>;
}

/** Every key path of a JSON value: `data.counts.succeeded`, … (arrays' items by index). */
function paths(v: unknown, at = ''): string[] {
  if (v === null || typeof v !== 'object') return [at];
  return Object.entries(v).flatMap(([k, x]) => paths(x, at ? `${at}.${k}` : k));
}

it('the documented batch.completed has the fields of a real one', async () => {
  const tracker = await startAppBatchTracker(t);
  try {
    const row = (ref: string, amount: string) =>
      `${ref},0123456789,058,GTBank,Ada Obi,${amount},NGN,June payout`;
    const input =
      'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n' +
      `${row('pay-0001', '5000.00')}\n${row('pay-0002', '1250.50')}\n${row('pay-0003', '700.00')}\n`;
    const r = await submitBatch(t.app, {
      input,
      type: 'payout',
      id: '3f9a0c1d2e4b5a69',
      sourceName: 'payouts.csv',
    });
    expect(r.status).toBe('created');
    const [first, second, third] = await t.app.store.batchKeys('3f9a0c1d2e4b5a69', 0, 10);
    // One row of each final state; the reversal lands before the batch completes.
    const steps = [
      [third, ['submitting', 'succeeded', 'reversed']],
      [first, ['submitting', 'succeeded']],
      [second, ['submitting', 'failed']],
    ] as const;
    for (const [key, states] of steps) {
      for (const to of states) {
        expect((await t.app.store.transition(key!, to, Date.now())).ok).toBe(true);
      }
    }
    await waitBatchCompleted(t, '3f9a0c1d2e4b5a69');
    const event = (await t.app.events.read(undefined, 1000)).find(
      (e) => e.type === 'batch.completed' && e.data.batchId === '3f9a0c1d2e4b5a69',
    );
    const sent = event && (await readNotification(t.app.events, event.streamId));
    expect(sent).toBeDefined();
    // On a mismatch the message is the real one, to paste into the docs.
    expect(paths(await documentedExample()).sort(), JSON.stringify(sent, null, 2)).toEqual(
      paths(sent).sort(),
    );
  } finally {
    await tracker.stop();
  }
});
