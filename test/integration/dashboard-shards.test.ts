/**
 * The queue dashboard with REDIS_SHARDS: a gateway auth failure pauses `charges` on every shard
 * (payments/auth-alert.ts), and the documented fix is to resume it from the dashboard. bull-board
 * keys queues by name, so before each shard's queue got its own name (`s1-charges`) only one
 * shard's `charges` was listed: the others stayed paused with no way to resume them. Real Redis
 * under a prefix of its own, the api role's HTTP server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

const USER = 'ops';
const PASSWORD = 'dashboard pass';
const AUTH = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };
/** Nothing here reaches the gateway (no worker runs). */
const GATEWAY_URL = 'http://127.0.0.1:9';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({
    sandboxUrl: GATEWAY_URL,
    roles: ['api'],
    env: { REDIS_SHARDS: '3', DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD },
  });
});
afterAll(async () => {
  await t?.close();
});

interface ListedQueue {
  name: string;
  isPaused: boolean;
}

async function listed(): Promise<ListedQueue[]> {
  const res = await t.running.http!.inject({
    method: 'GET',
    url: '/admin/queues/api/queues',
    headers: AUTH,
  });
  expect(res.statusCode).toBe(200);
  return res.json<{ queues: ListedQueue[] }>().queues;
}

describe('the dashboard over shards', () => {
  it("lists every shard's paused charges queue, and resuming one resumes that shard's", async () => {
    await t.app.dispatcher.pause('charges');
    const charges = (await listed()).filter((q) => q.name.endsWith('charges'));
    expect(charges.map((q) => [q.name, q.isPaused])).toEqual([
      ['s0-charges', true],
      ['s1-charges', true],
      ['s2-charges', true],
    ]);
    const resume = await t.running.http!.inject({
      method: 'PUT',
      url: '/admin/queues/api/queues/s1-charges/resume',
      headers: AUTH,
    });
    expect(resume.statusCode).toBe(200);
    const paused = await Promise.all(t.app.dispatcher.queuesOf('charges').map((q) => q.isPaused()));
    expect(paused).toEqual([true, false, true]);
    // A queue only the group has keeps its plain name.
    expect((await listed()).some((q) => q.name === 'subscriptions')).toBe(true);
  });
});
