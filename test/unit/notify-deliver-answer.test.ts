/**
 * What counts as delivered (docs/notifications.md "Answer fast, with a 2xx"): any 2xx, whatever
 * the answer's body. The body is ignored, so it must not turn an accepted delivery into a failed
 * attempt (retried, and after the schedule left failed) when it is large.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createDeliverHandler } from '../../src/notifications/deliver.ts';
import { notifyBackoffMs } from '../../src/notifications/module.ts';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

/** A receiver that accepts with `status` and a body of `bodyBytes` bytes. */
async function receiver(
  status: number,
  bodyBytes: number,
): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits++;
      res.writeHead(status, { 'content-type': 'text/html' });
      res.end('x'.repeat(bodyBytes));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hits: () => hits,
  };
}

const fields = {
  type: 'payment.succeeded',
  at: String(Date.UTC(2025, 0, 2, 3, 4, 5)),
  data: JSON.stringify({ key: 'api_big', amount: 150000, currency: 'NGN' }),
};
const log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
const SECRET = 'whsec_c3RhbmRhcmQtd2ViaG9va3MtdGVzdC1rZXktMzJieQ==';

/** Runs one first delivery attempt of `job` (a job carrying `fields` unless it says otherwise). */
function attempt(
  handler: ReturnType<typeof createDeliverHandler>,
  job: { eventId: string; event?: typeof fields },
) {
  return handler({ streamId: '1-0', ...job }, { job: { attemptsMade: 0 }, log } as never);
}

describe('notification delivery: the answer', () => {
  it('a 2xx with a large body (over 1 MiB) is delivered, not a failed attempt', async () => {
    const r = await receiver(200, 2 * 1024 * 1024);
    const handler = createDeliverHandler({
      events: { entry: () => Promise.resolve(undefined) },
      url: r.url,
      secret: SECRET,
      now: () => Date.now(),
    });
    await expect(
      attempt(handler, { eventId: 'evt_api_big_1_succeeded', event: fields }),
    ).resolves.toEqual({ status: 200 });
    expect(r.hits()).toBe(1);
  });

  it('a 2xx whose body is still streaming when the timeout ends is delivered', async () => {
    // The status line and headers come at once; the body never ends (a receiver streaming logs).
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('accepted\n');
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const handler = createDeliverHandler({
      events: { entry: () => Promise.resolve(undefined) },
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
      secret: 'plain-secret',
      now: () => Date.now(),
      // The body never ends, so a handler that read it would always reach this bound (and fail);
      // it only has to outlast the status line, which a loaded machine took over 300 ms to read.
      timeoutMs: 10_000,
    });
    await expect(
      attempt(handler, { eventId: 'evt_api_slow_1_succeeded', event: fields }),
    ).resolves.toEqual({ status: 200 });
  });

  it('a redirect (3xx, not followed) is not delivered: a retryable attempt', async () => {
    const r = await receiver(302, 0);
    const handler = createDeliverHandler({
      events: { entry: () => Promise.resolve(undefined) },
      url: r.url,
      secret: SECRET,
      now: () => Date.now(),
    });
    await expect(
      attempt(handler, { eventId: 'evt_api_big_1_succeeded', event: fields }),
    ).rejects.toMatchObject({ code: 'notify_refused' });
    expect(r.hits()).toBe(1);
  });
});

describe('notification delivery: the event', () => {
  it('a job whose stream entry is another event (no copy carried) sends nothing, for good', async () => {
    const r = await receiver(200, 0);
    const handler = createDeliverHandler({
      events: { entry: () => Promise.resolve({ ...fields, id: 'evt_someone_else' }) },
      url: r.url,
      secret: SECRET,
      now: () => Date.now(),
    });
    await expect(attempt(handler, { eventId: 'evt_api_big_1_succeeded' })).rejects.toMatchObject({
      code: 'notify_event_missing',
    });
    expect(r.hits()).toBe(0);
  });
});

describe('notification delivery: the retry schedule', () => {
  it('waits the n-th entry after n failed tries, the last one repeated', () => {
    const backoff = notifyBackoffMs([1_000, 60_000, 3_600_000]);
    expect([1, 2, 3, 4].map(backoff)).toEqual([1_000, 60_000, 3_600_000, 3_600_000]);
  });
});
