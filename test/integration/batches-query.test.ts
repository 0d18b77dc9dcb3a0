/**
 * POST /batches query parameters: snake_case aliases of the flags are accepted, and an unknown
 * (misspelt) parameter is refused naming it, changing nothing — never silently ignored.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const CSV = readFileSync(new URL('../../examples/payouts.csv', import.meta.url), 'utf8');
let sandbox: Sandbox;
let t: TestApp;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['api'] });
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

const upload = (query: string) =>
  fetch(`${t.url}/batches?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_API_TOKEN}`, 'content-type': 'text/csv' },
    body: CSV,
  });

describe('POST /batches query parameters', () => {
  it('refuses a misspelt flag naming it, and stores nothing', async () => {
    const res = await upload('type=payout&skipInvalud=true');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { details: { parameter: string }[] } };
    expect(body.error.details.map((d) => d.parameter)).toEqual(['skipInvalud']);
    expect(await t.app.redis.keys(`${t.prefix}:batch*`)).toEqual([]);
    expect(await t.app.redis.keys(`${t.prefix}:intent:*`)).toEqual([]);
  });

  it('accepts the snake_case spelling of a flag', async () => {
    const res = await upload('type=payout&validate_only=true');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'validated' });
  });
});
