/**
 * Events the stream's trim removed before the batch tracker read them. The tracker counts a
 * batch's rows from their payment events; a tracker stopped while about a million events were
 * appended (MAXLEN) loses the ones in between, and before, a running batch whose last rows' events
 * were lost never completed: its counts stayed behind for good. Now the tracker, once it finds the
 * gap, counts every running batch's rows from their intents' state, and the batch completes once,
 * with the right counts. Real Redis; the trim is an XTRIM of the stream to nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitBatch } from '../../src/batches/ingest.ts';
import { startBatchTracker } from '../../src/batches/tracker.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { waitBatchCompleted } from '../support/batch-http.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';

/** Nothing here reaches the gateway (no worker runs): no sandbox is needed. */
const GATEWAY_URL = 'http://127.0.0.1:9';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: GATEWAY_URL, roles: [] });
});
afterAll(async () => {
  await t?.close();
});

const tracker = () =>
  startBatchTracker(
    { batches: t.app.batches, events: t.app.events, clock: t.app.clock, logger: t.app.logger },
    { blockMs: 100, claimIdleMs: 1_000 },
  );

describe('a batch whose rows’ events were trimmed before the tracker read them', () => {
  it('is counted from its intents when the tracker finds the gap, and completes once', async () => {
    const id = 'trim-gap';
    const input =
      'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n' +
      [
        'tg-1,0123456789,058,GTBank,Ada Obi,10.00,NGN,a',
        'tg-2,0123456789,058,GTBank,Ada Obi,20.00,NGN,b',
        'tg-3,0123456789,058,GTBank,Ada Obi,30.00,NGN,c',
      ].join('\n') +
      '\n';
    expect((await submitBatch(t.app, { input, type: 'payout', id })).status).toBe('created');
    const [first, ...rest] = await t.app.store.batchKeys(id, 0, 10);
    expect(rest).toHaveLength(2);

    // A tracker reads the first row's outcome, then stops.
    const a = await tracker();
    // No worker runs: the rows end `failed` straight from `queued`, as a cancel ends them.
    expect((await t.app.store.transition(first!, 'failed', Date.now())).ok).toBe(true);
    await until(() => t.app.batches.get(id), {
      done: (b) => b?.counts.failed === 1,
      what: 'the first row counted',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    await a.stop();

    // The other rows end while no tracker runs, and the trim removes their events unread.
    for (const key of rest) {
      expect((await t.app.store.transition(key, 'failed', Date.now())).ok).toBe(true);
    }
    await t.app.redis.xtrim(storeKeys(t.prefix).events(), 'MAXLEN', 0);

    const b = await tracker();
    try {
      const done = await waitBatchCompleted(t, id, 20_000);
      expect(done.counts.failed).toBe(3);
      expect(done.totals.NGN?.byState.failed.amountMinor).toBe(6_000);
      const completed = (await t.app.events.read(undefined, 1_000)).filter(
        (e) => e.type === 'batch.completed' && e.data.batchId === id,
      );
      expect(completed).toHaveLength(1);
    } finally {
      await b.stop();
    }
  });
});
