/**
 * Who asked for a refund is recorded (docs/refunds.md "Who asked"), as a resolution's `by` and a
 * batch's `submittedBy` are: over HTTP the name of the token (`API_TOKEN`), on the CLI
 * `cli:<os user>`. It is on the stored refund (`payee.requestedBy`), its first history line, the
 * "refund reserved" log line (`by`) and the refund's views (API, CLI, console). A refund stored before it was recorded
 * (no requester anywhere) still reads and shows. Real Redis and HTTP; no worker runs, so refunds
 * stay queued and nothing talks to Sayswitch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliIdentity } from '../../src/batches/approval.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { apiCall } from '../support/api-call.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { createTestCharge } from '../support/intents.ts';

let t: TestApp;
const logLines: string[] = [];

beforeAll(async () => {
  t = await startTestApp({
    sandboxUrl: 'http://127.0.0.1:9',
    roles: ['api'],
    env: { LOG_LEVEL: 'info' },
    logDestination: { write: (line) => void logLines.push(line) },
  });
});
afterAll(async () => {
  await t?.close();
});

/** A succeeded NGN charge `api_<name>` of `amount` minor units. */
async function paidCharge(name: string, amount = 1000): Promise<IntentKey> {
  const key = await createTestCharge(t.app.store, name, Date.now(), amount as AmountMinor);
  for (const to of ['submitting', 'succeeded'] as const) {
    await t.app.store.transition(key, to, Date.now());
  }
  return key;
}

/** The "refund reserved" log lines of refund `key`. */
const reservedLogs = (key: string) =>
  logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'refund reserved' && l.key === key);

describe('who asked for a refund', () => {
  it('over HTTP: the token name, on the refund, its history, its log line and its views', async () => {
    const charge = await paidCharge('rq-http');
    const res = await apiCall(t, 'POST', `/payments/${charge}/refunds`, { key: 'rq-http-1' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const key = `rf1_${charge}`;
    expect(res.body).toMatchObject({ key, requestedBy: 'API_TOKEN' });

    const stored = await t.app.store.get(key);
    expect(stored?.payee).toMatchObject({ kind: 'refund', requestedBy: 'API_TOKEN' });
    expect(stored?.origin).toBe('api');
    const history = await t.app.store.history(key);
    expect(history).toEqual([
      expect.objectContaining({ from: null, to: 'queued', requestedBy: 'API_TOKEN' }),
    ]);
    expect(reservedLogs(key)).toEqual([expect.objectContaining({ by: 'API_TOKEN' })]);

    // The same key again: the same refund, still the first requester's.
    const again = await apiCall(t, 'POST', `/payments/${charge}/refunds`, { key: 'rq-http-1' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ key, requestedBy: 'API_TOKEN' });
    const list = await apiCall<{ refunds: unknown[] }>(t, 'GET', `/payments/${charge}/refunds`);
    expect(list.body.refunds).toEqual([expect.objectContaining({ key, requestedBy: 'API_TOKEN' })]);
    const page = await t.running.http!.inject({
      method: 'GET',
      url: `/console/payments/${key}`,
      headers: { authorization: `Bearer ${TEST_API_TOKEN}` },
    });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<dt>Requested by<\/dt>\s*<dd>API_TOKEN<\/dd>/);
  });

  it('on the CLI: cli:<os user>, on the refund, its history, --json and the text line', async () => {
    const charge = await paidCharge('rq-cli');
    const me = cliIdentity();
    expect(me).toMatch(/^cli:/);
    const r = await runCliInProcess(t.app.config, ['payments', 'refund', charge, '--json']);
    expect(r.code, r.err).toBe(0);
    const key = `rf1_${charge}`;
    expect(JSON.parse(r.out)).toMatchObject({ key, created: true, requestedBy: me });

    const stored = await t.app.store.get(key);
    expect(stored?.payee).toMatchObject({ kind: 'refund', requestedBy: me });
    expect(await t.app.store.history(key)).toEqual([
      expect.objectContaining({ from: null, to: 'queued', requestedBy: me }),
    ]);
    const human = await runCliInProcess(t.app.config, ['payments', 'refunds', charge]);
    expect(human.code, human.err).toBe(0);
    expect(human.out).toContain(`requested by ${me}`);
  });

  it('a refund stored before the requester was recorded still reads, without one', async () => {
    const charge = await paidCharge('rq-old');
    const res = await apiCall(t, 'POST', `/payments/${charge}/refunds`, {});
    expect(res.status).toBe(201);
    const key = `rf1_${charge}`;
    // Rewrite it as it was stored before: no requester in the payee or the first history line.
    const k = storeKeys(t.prefix);
    const payee = JSON.parse((await t.app.redis.hget(k.intent(key), 'payee')) ?? '{}') as Record<
      string,
      unknown
    >;
    delete payee.requestedBy;
    await t.app.redis.hset(k.intent(key), 'payee', JSON.stringify(payee));
    const [line] = await t.app.redis.lrange(k.history(key), 0, 0);
    const first = JSON.parse(line ?? '{}') as Record<string, unknown>;
    delete first.requestedBy;
    await t.app.redis.lset(k.history(key), 0, JSON.stringify(first));

    const stored = await t.app.store.get(key);
    expect(stored?.payee).not.toHaveProperty('requestedBy');
    const list = await apiCall<{ refunds: Record<string, unknown>[] }>(
      t,
      'GET',
      `/payments/${charge}/refunds`,
    );
    expect(list.status).toBe(200);
    expect(list.body.refunds).toHaveLength(1);
    expect(list.body.refunds[0]).toMatchObject({ key });
    expect(list.body.refunds[0]).not.toHaveProperty('requestedBy');
    const view = await apiCall(t, 'GET', `/payments/${key}`);
    expect(view.status).toBe(200);
    const cli = await runCliInProcess(t.app.config, ['payments', 'refunds', charge, '--json']);
    expect(cli.code, cli.err).toBe(0);
    expect(cli.out).not.toContain('requestedBy');
  });
});
