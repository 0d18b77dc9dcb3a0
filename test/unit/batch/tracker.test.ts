/**
 * The batch tracker's handling of a read (batches/tracker.ts), with the EventLog and BatchStore
 * ports faked: entries are applied and acknowledged in one store step; an entry the store refuses
 * is found, logged and acknowledged unapplied while the others are applied; any other failure is
 * thrown, so the consumer leaves the read pending.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { EventConsumerOptions, EventLog, StreamEntry } from '../../../src/kernel/ports.ts';
import { createLogger } from '../../../src/infra/logger.ts';
import type { ApplyEventsResult, BatchRowEvent, BatchStore } from '../../../src/batches/ports.ts';
import { BATCH_GROUP, startBatchTracker } from '../../../src/batches/tracker.ts';

function entry(id: string, type: string, data: Record<string, unknown>): StreamEntry {
  return [id, ['id', `evt_${id}`, 'type', type, 'at', '1', 'data', JSON.stringify(data)]];
}

const row = (id: string, key: string, state = 'succeeded') =>
  entry(id, 'payment.succeeded', { key, batchId: 'b1', state });

interface Harness {
  handle: EventConsumerOptions['handle'];
  options: EventConsumerOptions;
  calls: { events: BatchRowEvent[]; ackIds: string[] }[];
  acked: string[][];
  logs: Record<string, unknown>[];
}

/** Starts the tracker on fakes; `apply` decides what the store answers to each step. */
async function harness(
  apply: (events: readonly BatchRowEvent[]) => ApplyEventsResult,
): Promise<Harness> {
  const calls: Harness['calls'] = [];
  const logs: Record<string, unknown>[] = [];
  let captured: EventConsumerOptions | undefined;
  const unused = () => Promise.reject(new Error('not used by the tracker'));
  const batches: BatchStore = {
    claim: unused,
    takeOver: unused,
    renew: unused,
    finishIngest: unused,
    get: unused,
    addInvalid: unused,
    invalidRows: unused,
    markReferencedLines: unused,
    referencedLines: unused,
    referenceHolders: unused,
    claimReferences: unused,
    intentFields: unused,
    resyncRunning: unused,
    applyEvents: (group, events, ackIds) => {
      expect(group).toBe(BATCH_GROUP);
      calls.push({ events: [...events], ackIds: [...ackIds] });
      return Promise.resolve(apply(events));
    },
  };
  const events: EventLog = {
    append: unused,
    appendOnce: unused,
    read: unused,
    entry: unused,
    ensureGroup: unused,
    consume: (opts) => {
      captured = opts;
      return Promise.resolve({
        consumer: opts.consumer ?? 'c',
        isOpen: () => true,
        stop: () => Promise.resolve(),
      });
    },
  };
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const tracker = await startBatchTracker(
    {
      batches,
      events,
      clock: { now: () => 1_000 },
      logger: createLogger({ level: 'info', destination }),
    },
    { consumer: 'test-consumer' },
  );
  expect(tracker.consumer).toBe('test-consumer');
  if (!captured) throw new Error('the tracker did not consume the events stream');
  const acked: string[][] = [];
  const options = captured;
  return {
    options,
    handle: (entries, ack) =>
      options.handle(entries, async (ids) => {
        acked.push([...ids]);
        await ack(ids);
      }),
    calls,
    acked,
    logs,
  };
}

const noAck = () => Promise.resolve();

describe('batch tracker', () => {
  it('follows the stream in group "batches" and applies a read in one acknowledging step', async () => {
    const h = await harness(() => ({ ok: true, completed: ['b1'] }));
    expect(h.options).toMatchObject({ group: BATCH_GROUP, consumer: 'test-consumer' });
    await h.handle(
      [
        row('1-0', 'bat_b1_a'),
        entry('2-0', 'subscription.created', { subscriptionId: 's1' }),
        ['3-0', null],
        row('4-0', 'bat_b1_b', 'pending'),
      ],
      noAck,
    );
    expect(h.calls).toEqual([
      {
        events: [
          { streamId: '1-0', intentKey: 'bat_b1_a', batchId: 'b1', state: 'succeeded' },
          { streamId: '4-0', intentKey: 'bat_b1_b', batchId: 'b1', state: 'pending' },
        ],
        // Every entry of the read, batch row or not, is acknowledged by the store's step.
        ackIds: ['1-0', '2-0', '3-0', '4-0'],
      },
    ]);
    expect(h.acked).toEqual([]);
    expect(h.logs).toContainEqual(
      expect.objectContaining({ batchId: 'b1', msg: 'batch completed' }),
    );
  });

  it('skips only the entry the store refuses, acknowledging it; the others are applied', async () => {
    const h = await harness((events) =>
      events.some((e) => e.intentKey === 'bat_b1_bad')
        ? {
            ok: false,
            refused: 'WRONGTYPE Operation against a key holding the wrong kind of value',
          }
        : { ok: true, completed: [] },
    );
    await h.handle(
      [row('1-0', 'bat_b1_a'), row('2-0', 'bat_b1_bad'), row('3-0', 'bat_b1_c')],
      noAck,
    );
    expect(h.calls.map((c) => c.ackIds)).toEqual([
      ['1-0', '2-0', '3-0'],
      ['1-0'],
      ['2-0'],
      ['3-0'],
    ]);
    expect(h.acked).toEqual([['2-0']]);
    expect(h.logs).toContainEqual(
      expect.objectContaining({
        batchId: 'b1',
        msg: 'batch event refused by Redis; skipped',
      }),
    );
  });

  it('throws any other failure, acknowledging nothing (the read stays pending)', async () => {
    const h = await harness(() => {
      throw new Error('connection lost');
    });
    await expect(h.handle([row('1-0', 'bat_b1_a')], noAck)).rejects.toThrow('connection lost');
    expect(h.acked).toEqual([]);
  });
});
