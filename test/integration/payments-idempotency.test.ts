/**
 * Exactly once at the gateway: the same payment created twice, the same job added twice, and a
 * completed job retried each reach the gateway exactly once. And the HTTP surface of
 * `POST /payments` / `GET /payments/:reference`: 201 then 200 for the same key and body, 409 for
 * the same key with another body, 422 naming the field, 401 without the token.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PaymentGateway } from '../../src/kernel/ports.ts';
import { createPayment } from '../../src/payments/create.ts';
import { parseInstruction } from '../../src/input/instruction-body.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { submitJobId } from '../../src/infra/queues/names.ts';
import { bullJobName, jobOptionsFor } from '../../src/infra/queues/catalog.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox;
let t: TestApp;
/** Submissions that left the worker for the gateway, by reference. */
const calls = new Map<string, number>();

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: ['api', 'worker', 'reconciler'] });
  // Count every submission that leaves the worker: wrap the app's gateway in place.
  const gateway: PaymentGateway = t.app.gateway;
  const original = gateway.chargeCard.bind(gateway);
  gateway.chargeCard = (r) => {
    calls.set(r.reference, (calls.get(r.reference) ?? 0) + 1);
    return original(r);
  };
});

afterAll(async () => {
  await t.close();
  await sandbox.close();
});

const body = (key: string, amount = '25.00') => ({
  type: 'charge',
  key,
  email: 'idem@example.com',
  amount,
  currency: 'NGN',
  card_token: 'tok_idem_0123456789',
});

async function waitState(key: string, state: string) {
  const intent = await until(() => t.app.store.get(key), {
    done: (i) => i?.state === state,
    what: `${key} ${state}`,
    timeoutMs: 10_000,
  });
  return intent!;
}

/**
 * Resolves once no job of the intent is left to run in the charges or reconcile queue (a check
 * can resubmit). The intent is final by then, so no new job of it can appear: whatever reaches
 * the gateway for it has reached it, and a count read afterwards is the final count.
 */
async function noJobLeft(key: string) {
  const queues = (['charges', 'reconcile'] as const).map((q) => t.app.dispatcher.queue(q));
  const states = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;
  const left = async () =>
    (await Promise.all(queues.map((q) => q.getJobs([...states]))))
      .flat()
      .filter((job) => (job.data as { key?: string }).key === key)
      .map((job) => `${job.queueName}/${job.id}`);
  await until(left, {
    done: (jobs) => jobs.length === 0,
    what: `no job of ${key} left to run`,
    timeoutMs: 10_000,
  });
}

function deps() {
  return createDeps(t.app);
}

describe('exactly once at the gateway', () => {
  it('the same payment created twice (concurrently) is one intent and one gateway call', async () => {
    const [a, b] = await Promise.all([
      createPayment(deps(), body('twice')),
      createPayment(deps(), body('twice')),
    ]);
    expect([a.status, b.status].sort()).toEqual(['created', 'existing']);
    const intent = await waitState('api_twice', 'succeeded');
    await noJobLeft(intent.key);
    expect(calls.get(intent.reference)).toBe(1);
    expect(sandbox.ledger().references[intent.reference]?.moneyMoved).toBe(true);
  });

  it('the same job added twice runs the gateway once', async () => {
    const r = await createPayment(deps(), body('jobtwice'));
    if (r.status !== 'created') throw new Error(r.status);
    await t.app.dispatcher.submit(r.intent);
    await t.app.dispatcher.submit(r.intent);
    const intent = await waitState('api_jobtwice', 'succeeded');
    await noJobLeft(intent.key);
    expect(calls.get(intent.reference)).toBe(1);
  });

  it('a completed job retried (and a replayed job under a new id) never calls the gateway again', async () => {
    const r = await createPayment(deps(), body('retried'));
    if (r.status !== 'created') throw new Error(r.status);
    const intent = await waitState('api_retried', 'succeeded');
    const queue = t.app.dispatcher.queue('charges');
    const job = await queue.getJob(
      submitJobId(intent.reference, intent.enqueues, intent.incarnation),
    );
    // The intent is final inside the handler; BullMQ marks the job completed just after.
    await until(() => job?.getState(), {
      done: (s) => s === 'completed',
      what: 'the submit job completed',
    });
    expect(await job?.getState()).toBe('completed');
    await job?.retry('completed');
    // A replay of the same payload under another id, as a lost-write recovery might produce.
    await queue.add(
      bullJobName('charges.submit'),
      {
        key: intent.key,
        attempt: intent.attempt,
        amount: intent.amount,
        currency: intent.currency,
      },
      { ...jobOptionsFor('charges.submit'), jobId: `${intent.reference}-replay` },
    );
    await until(
      () => Promise.all([job?.getState(), queue.getJobState(`${intent.reference}-replay`)]),
      {
        done: (states) => states.every((s) => s === 'completed'),
        what: 'the retried job and the replay completed',
      },
    );
    await noJobLeft(intent.key);
    expect(await queue.getJobState(`${intent.reference}-replay`)).toBe('completed');
    expect(calls.get(intent.reference)).toBe(1);
    expect((await t.app.store.get('api_retried'))?.state).toBe('succeeded');
  });
});

describe('POST /payments and GET /payments/:reference', () => {
  const auth = { authorization: `Bearer ${TEST_API_TOKEN}`, 'content-type': 'application/json' };
  const read = { authorization: `Bearer ${TEST_API_TOKEN}` };
  const post = (payload: unknown, headers: Record<string, string> = auth) =>
    fetch(`${t.url}/payments`, { method: 'POST', headers, body: JSON.stringify(payload) });

  it('is idempotent on the key: 201, then 200 with the same intent; 409 for another body', async () => {
    const first = await post(body('http1'));
    expect(first.status).toBe(201);
    const second = await post(body('http1'));
    expect(second.status).toBe(200);
    expect(((await second.json()) as { key: string }).key).toBe('api_http1');
    const conflict = await post(body('http1', '26.00'));
    expect(conflict.status).toBe(409);
    expect(((await conflict.json()) as { error: { code: string } }).error.code).toBe('key_reused');
  });

  it('a body that differs only in its metadata is another body: 409', async () => {
    expect((await post({ ...body('meta1'), meta_order: 'A-1' })).status).toBe(201);
    expect((await post({ ...body('meta1'), meta_order: 'A-1' })).status).toBe(200);
    // Metadata named like a row field (`meta_amount`) counted before, other names did not.
    expect((await post({ ...body('meta1'), meta_order: 'A-2' })).status).toBe(409);
    expect((await post(body('meta1'))).status).toBe(409);
    const stored = await t.app.store.get('api_meta1');
    expect(stored?.meta).toEqual({ order: 'A-1' });
  });

  it('an intent stored with the hash before v2 still answers its identical retry', async () => {
    // Made by the code before v2: an HMAC of JSON.stringify with the row's sorted keys as its list.
    const row = { ...body('legacy1'), meta_order: 'L-1' };
    const parsed = parseInstruction(row);
    if (!parsed.ok) throw new Error('the body is valid');
    const { line: _line, ...rest } = parsed.row;
    const fields = { type: parsed.type, ...rest };
    const legacy = createHmac('sha256', t.app.config.dataEncryptionKey)
      .update(JSON.stringify(fields, Object.keys(fields).sort()))
      .digest('hex');
    const created = await createPayment(createDeps(t.app), row);
    expect(created.status).toBe('created');
    await t.app.redis.hset(storeKeys(t.prefix).intent('api_legacy1'), 'requestHash', legacy);
    expect((await post(row)).status).toBe(200);
    expect((await post({ ...row, amount: '26.00' })).status).toBe(409);
  });

  it('a retry re-adds the job a crash after persisting the intent lost', async () => {
    // The intent written, the process gone before its job was added.
    const lost = await createPayment(
      { ...createDeps(t.app), dispatcher: { submit: async () => {} } as never },
      body('lostjob'),
    );
    expect(lost.status).toBe('created');
    expect((await post(body('lostjob'))).status).toBe(200);
    await waitState('api_lostjob', 'succeeded');
  });

  it('refuses a request without the bearer token (401) and changes nothing', async () => {
    const res = await post(body('noauth'), { 'content-type': 'application/json' });
    expect(res.status).toBe(401);
    expect(await t.app.store.get('api_noauth')).toBeUndefined();
  });

  it('refuses an invalid body with 422 naming the field, and changes nothing', async () => {
    const res = await post({ ...body('bad'), amount: '-5' });
    expect(res.status).toBe(422);
    const err = (await res.json()) as { error: { details: { field: string }[] } };
    expect(err.error.details.map((d) => d.field)).toContain('amount');
    expect(await t.app.store.get('api_bad')).toBeUndefined();
  });

  it('refuses a body over the limit with 413 payload_too_large, and changes nothing', async () => {
    const res = await post({ ...body('huge'), narration: 'x'.repeat(2 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'payload_too_large',
    );
    expect(await t.app.store.get('api_huge')).toBeUndefined();
  });

  it('a body without card_token: 422 naming the field, in field words (no column, no header)', async () => {
    const { card_token: _omitted, ...rest } = body('notoken');
    const res = await post(rest);
    expect(res.status).toBe(422);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      error: {
        code: 'invalid_payment',
        message: 'the payment instruction is invalid',
        details: [{ field: 'card_token', message: 'card_token is required' }],
      },
    });
    expect(text).not.toMatch(/column|header|line/);
    expect(await t.app.store.get('api_notoken')).toBeUndefined();
  });

  it('finds a payment by key and by attempt reference, never exposing the card token', async () => {
    await post(body('lookup'));
    const intent = await waitState('api_lookup', 'succeeded');
    for (const ref of [intent.key, intent.reference]) {
      const res = await fetch(`${t.url}/payments/${ref}`, { headers: read });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain('tok_idem');
      const view = JSON.parse(text) as {
        state: string;
        attempts: { reference: string }[];
        history: unknown[];
      };
      expect(view.state).toBe('succeeded');
      expect(view.attempts[0]?.reference).toBe(intent.reference);
      expect(view.history.length).toBeGreaterThanOrEqual(3);
    }
    expect((await fetch(`${t.url}/payments/api_nothing_1`, { headers: read })).status).toBe(404);
  });
});

describe('billing payments show', () => {
  it('prints one payment by key or reference, and exits 2 for an unknown one', async () => {
    const { runBilling } = await import('../support/child.ts');
    const { FAST_ENV } = await import('../support/app.ts');
    const { getRedisUrl } = await import('../support/redis.ts');
    await createPayment(deps(), body('cli'));
    const intent = await waitState('api_cli', 'succeeded');
    const env = {
      ...FAST_ENV,
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: t.prefix,
      SAYSWITCH_BASE_URL: sandbox.url,
    };
    const human = await runBilling(['payments', 'show', intent.reference], env);
    expect(human.code, human.output).toBe(0);
    expect(human.output).toContain('api_cli');
    expect(human.output).toContain('succeeded');
    const json = await runBilling(['payments', 'show', 'api_cli', '--json'], env);
    expect(JSON.parse(json.output.trim())).toMatchObject({ key: 'api_cli', state: 'succeeded' });
    const missing = await runBilling(['payments', 'show', 'api_nope_1'], env);
    expect(missing.code).toBe(2);
  }, 60_000);
});
