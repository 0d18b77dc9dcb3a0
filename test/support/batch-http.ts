/**
 * What the batch integration tests share: a `billing` child's environment on a test app's Redis
 * prefix and sandbox, a CSV upload through `POST /batches`, waiting for a batch to complete, and
 * its results file parsed.
 */
import { PassThrough } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { expect } from 'vitest';
import { batchResults } from '../../src/batches/results.ts';
import { batchStatus, type BatchStatus } from '../../src/batches/status.ts';
import { startBatchTracker } from '../../src/batches/tracker.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { FAST_ENV, TEST_API_TOKEN, type TestApp } from './app.ts';
import { until } from './poll.ts';
import { getRedisUrl } from './redis.ts';

/** The environment of a `billing` child on this test app's Redis prefix and sandbox. */
export async function batchCliEnv(
  t: TestApp,
  sandbox: Sandbox,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  return {
    ...FAST_ENV,
    REDIS_URL: await getRedisUrl(),
    QUEUE_PREFIX: t.prefix,
    SAYSWITCH_BASE_URL: sandbox.url,
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

/** `POST /batches?<query>` with a CSV body; `token: null` sends no credentials. */
export async function uploadCsv(
  t: TestApp,
  body: string | Buffer,
  query: string,
  token: string | null = TEST_API_TOKEN,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${t.url}/batches?${query}`, {
    method: 'POST',
    headers: {
      'content-type': 'text/csv',
      ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
    },
    body,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Waits until the batch's state is `completed` (a bound, not a target). */
export async function waitBatchCompleted(
  t: TestApp,
  id: string,
  timeoutMs = 60_000,
): Promise<BatchStatus> {
  const s = await until(() => batchStatus(t.app, id), {
    done: (st) => st?.state === 'completed',
    what: `batch ${id} completed`,
    timeoutMs,
    intervalMs: 50,
  });
  return s!;
}

/** The batch's results file, one record per row. */
export async function batchResultRows(t: TestApp, id: string): Promise<Record<string, string>[]> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  expect(await batchResults(t.app, id, out)).toBe(true);
  return parse<Record<string, string>>(Buffer.concat(chunks).toString('utf8'), { columns: true });
}

/** The batch tracker on a test app (the worker role's, alone): stop it when done. */
export function startAppBatchTracker(t: TestApp): ReturnType<typeof startBatchTracker> {
  const { batches, events, clock, logger } = t.app;
  return startBatchTracker({ batches, events, clock, logger });
}
