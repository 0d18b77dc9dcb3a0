/**
 * Webhooks: outcomes 52, 53, 54, 55 and 58 end final through webhooks alone (the reconcile
 * schedule is an hour away); duplicated and shuffled deliveries give the same final states;
 * forged, missing and tampered signatures are refused and logged without the body; a webhook
 * that arrives before its intent resolves once the intent exists.
 */
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { signWebhook } from '../../src/infra/gateway/sayswitch/crypto.ts';
import { createPayment } from '../../src/payments/create.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, type TestApp } from '../support/app.ts';
import { countServerResponses } from '../support/http-events.ts';
import { until } from '../support/poll.ts';
import { findFreePort } from '../support/redis-server.ts';
import { startTestSandbox, TEST_SECRET_KEY } from '../support/sandbox.ts';

const FINAL = new Set(['succeeded', 'failed', 'reversed', 'needs_review']);
/** Only webhooks can finish these payments in time: every scheduled check is an hour away. */
const WEBHOOKS_ONLY = {
  RECONCILE_SCHEDULE: '1h',
  PAYOUT_WATCH_SCHEDULE: '1h',
  RECONCILE_NOT_FOUND_GRACE: '1h',
};

let sandbox: Sandbox | undefined;
let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  await sandbox?.close();
  t = undefined;
  sandbox = undefined;
});

/** Webhook-triggered checks (job ids `wh-…`) not yet run to the end. */
async function webhookChecksToRun(app: TestApp): Promise<string[]> {
  const jobs = await app.app.dispatcher
    .queue('reconcile')
    .getJobs(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);
  return jobs.map((j) => j.id ?? '').filter((id) => id.startsWith('wh-'));
}

async function start(opts: { duplicates?: number; shuffle?: boolean; logs?: string[] } = {}) {
  const port = await findFreePort();
  sandbox = await startTestSandbox({
    settleMs: 200,
    hangMs: 1_000,
    webhookUrl: `http://127.0.0.1:${port}/webhooks/sayswitch`,
    webhookDuplicates: opts.duplicates ?? 1,
    webhookShuffle: opts.shuffle ?? false,
    seed: 3,
  });
  const logs = opts.logs;
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api', 'worker', 'reconciler'],
    env: { ...WEBHOOKS_ONLY, PORT: String(port), ...(logs ? { LOG_LEVEL: 'info' } : {}) },
    ...(logs ? { logDestination: { write: (line: string) => void logs.push(line) } } : {}),
  });
  return { sandbox, t };
}

function deps(app: TestApp) {
  return createDeps(app.app);
}

const charge = (key: string, amount: string) => ({
  type: 'charge',
  key,
  email: 'w@example.com',
  amount,
  currency: 'NGN',
  card_token: 'tok_webhook_0123456789',
});
const payout = (key: string, amount: string) => ({
  type: 'payout',
  key,
  account_number: '0123456789',
  bank_code: '000013',
  bank_name: 'GTBank',
  account_name: 'Web Hook',
  amount,
  currency: 'NGN',
  narration: 'webhook test',
});

async function waitState(
  app: TestApp,
  key: string,
  want: (s: string) => boolean,
  timeoutMs = 15_000,
) {
  const intent = await until(() => app.app.store.get(key), {
    done: (i) => i !== undefined && want(i.state),
    what: `${key} in the wanted state`,
    timeoutMs,
  });
  return intent!;
}

const CASES: [string, string, string][] = [
  ['52', 'succeeded', 'succeeded'],
  ['53', 'failed', 'failed'],
  ['54', 'succeeded', 'succeeded'],
  ['55', 'succeeded', 'succeeded'],
  ['58', 'succeeded', 'reversed'],
];

async function runCases(app: TestApp, box: Sandbox, tag: string) {
  for (const [rem] of CASES) {
    await createPayment(deps(app), charge(`${tag}c${rem}`, `20.${rem}`));
    await createPayment(deps(app), payout(`${tag}p${rem}`, `20.${rem}`));
  }
  const finals: Record<string, string> = {};
  for (const [rem, chargeState, payoutState] of CASES) {
    const c = await waitState(app, `api_${tag}c${rem}`, (s) => s === chargeState);
    const p = await waitState(app, `api_${tag}p${rem}`, (s) => s === payoutState);
    const ledger = box.ledger().references;
    expect(ledger[c.reference]?.moneyMoved ?? false).toBe(chargeState === 'succeeded');
    expect(ledger[p.reference]?.moneyMoved ?? false).toBe(payoutState === 'succeeded');
    finals[c.key] = c.state;
    finals[p.key] = p.state;
  }
  return finals;
}

describe('webhooks drive payments to their final state', () => {
  it('52, 53, 54, 55 and 58 end final through webhooks alone and agree with the ledger', async () => {
    const { sandbox: box, t: app } = await start();
    const finals = await runCases(app, box, 'w');
    expect(Object.values(finals).every((s) => FINAL.has(s))).toBe(true);
  });

  it('duplicated (x3) and shuffled webhooks give the same final states', async () => {
    const { sandbox: box, t: app } = await start({ duplicates: 3, shuffle: true });
    // Each webhook the app answered 200 was taken in: its check enqueued (or collapsed).
    const takenIn = countServerResponses(
      Number(new URL(app.url!).port),
      '/webhooks/sayswitch',
      200,
    );
    onTestFinished(() => takenIn.stop());
    const finals = await runCases(app, box, 'd');
    // Let every duplicate land and every check it triggered run, then check nothing moved. The
    // sandbox sends one webhook per final status a reference reaches (two for a reversal, which
    // succeeded first), three copies each.
    const sent =
      3 *
      Object.values(box.ledger().references)
        .map((e): number => (e.status === 'reversed' ? 2 : e.status === 'pending' ? 0 : 1))
        .reduce((a, b) => a + b, 0);
    expect(sent).toBe(3 * 11);
    await until(takenIn, {
      done: (n) => n >= sent,
      what: `${sent} webhooks taken in`,
      timeoutMs: 15_000,
    });
    await until(() => webhookChecksToRun(app), {
      done: (ids) => ids.length === 0,
      what: 'every webhook-triggered check run',
      timeoutMs: 15_000,
    });
    for (const [key, state] of Object.entries(finals)) {
      expect((await app.app.store.get(key))?.state).toBe(state);
    }
    const events = await app.app.events.read();
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('webhook signature and intake', () => {
  const body = JSON.stringify({
    notify: 'payout',
    notifyType: 'successful',
    data: { reference: 'api_forged_1', status: 'success', amount: '5000000', currency: 'NGN' },
  });

  it('refuses forged, missing and tampered signatures with 401 and never logs the body', async () => {
    const logs: string[] = [];
    const { t: app } = await start({ logs });
    const url = `${app.url}/webhooks/sayswitch`;
    const post = (headers: Record<string, string>, payload = body) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: payload,
      });

    expect((await post({})).status).toBe(401);
    expect((await post({ payloadSignature: 'ab'.repeat(64) })).status).toBe(401);
    expect((await post({ payloadSignature: signWebhook(body, 'sk_wrong_key') })).status).toBe(401);
    const tampered = body.replace('5000000', '5000001');
    expect(
      (await post({ payloadSignature: signWebhook(body, TEST_SECRET_KEY) }, tampered)).status,
    ).toBe(401);
    expect((await post({ payloadSignature: signWebhook(body, TEST_SECRET_KEY) })).status).toBe(200);

    const refused = logs.filter((l) => l.includes('bad payloadSignature'));
    expect(refused.length).toBe(4);
    for (const line of logs) expect(line).not.toContain('5000000');
    expect(await app.app.store.get('api_forged')).toBeUndefined();
  });

  it('refuses an oversized body with 413', async () => {
    const { t: app } = await start();
    const big = JSON.stringify({
      notify: 'payout',
      data: { reference: 'x', pad: 'x'.repeat(70_000) },
    });
    const res = await fetch(`${app.url}/webhooks/sayswitch`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        payloadSignature: signWebhook(big, TEST_SECRET_KEY),
      },
      body: big,
    });
    expect(res.status).toBe(413);
  });

  it('keeps a webhook that arrives before its intent and resolves it once the intent exists', async () => {
    const { t: app } = await start();
    const early = JSON.stringify({
      notify: 'transaction',
      notifyType: 'successful',
      data: { reference: 'api_early_1', status: 'success', amount: '30', currency: 'NGN' },
    });
    const res = await fetch(`${app.url}/webhooks/sayswitch`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        payloadSignature: signWebhook(early, TEST_SECRET_KEY),
      },
      body: early,
    });
    expect(((await res.json()) as { result: string }).result).toBe('early');
    const queue = app.app.dispatcher.queue('reconcile');
    const job = await queue.getJob('wh-api_early_1-early');
    expect(job).toBeDefined();

    await createPayment(deps(app), charge('early', '30.00'));
    await waitState(app, 'api_early', (s) => s === 'succeeded');
    // The kept webhook job retries until the intent exists, then completes (never fails).
    const state = await until(() => queue.getJobState('wh-api_early_1-early'), {
      done: (s) => s === 'completed' || s === 'failed',
      what: 'the kept webhook job final',
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    expect(state).toBe('completed');
  }, 30_000);
});

describe('webhooks while the secret key is rotated (SAYSWITCH_SECRET_KEY_PREVIOUS)', () => {
  const PREVIOUS_KEY = 'sk_test_previous_key_0123';

  it('a webhook signed with the previous key triggers the check a current-key one does; an unrelated key is 401', async () => {
    // The sandbox sends no webhooks of its own here: only the ones below can finish a payment.
    sandbox = await startTestSandbox({ settleMs: 200, seed: 3 });
    const box = sandbox;
    const logs: string[] = [];
    t = await startTestApp({
      sandboxUrl: box.url,
      roles: ['api', 'worker', 'reconciler'],
      env: { ...WEBHOOKS_ONLY, SAYSWITCH_SECRET_KEY_PREVIOUS: PREVIOUS_KEY, LOG_LEVEL: 'info' },
      logDestination: { write: (line: string) => void logs.push(line) },
    });
    const app = t;
    // Three charges the sandbox answers pending and settles as succeeded 200 ms later (52).
    for (const k of ['cur', 'prev', 'other'])
      await createPayment(deps(app), charge(`rot${k}`, '20.52'));
    const settled = async (k: string) => {
      const intent = await waitState(app, `api_rot${k}`, (s) => s === 'pending');
      await until(() => box.ledger().references[intent.reference]?.status, {
        done: (s) => s === 'success',
        what: `${intent.reference} settled at the sandbox`,
      });
      return intent;
    };
    const signatures: string[] = [];
    const post = async (reference: string, key: string) => {
      const body = JSON.stringify({
        notify: 'transaction',
        notifyType: 'successful',
        data: { reference, status: 'success', amount: '2052', currency: 'NGN' },
      });
      const signature = signWebhook(body, key);
      signatures.push(signature);
      const res = await fetch(`${app.url}/webhooks/sayswitch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', payloadSignature: signature },
        body,
      });
      return { status: res.status, body: (await res.json()) as { result?: string } };
    };

    const current = await settled('cur');
    expect(await post(current.reference, TEST_SECRET_KEY)).toEqual({
      status: 200,
      body: { received: true, result: 'enqueued' },
    });
    const previous = await settled('prev');
    expect(await post(previous.reference, PREVIOUS_KEY)).toEqual({
      status: 200,
      body: { received: true, result: 'enqueued' },
    });
    const other = await settled('other');
    expect((await post(other.reference, 'sk_test_unrelated_key_99')).status).toBe(401);

    // Both accepted webhooks made the payment be verified with the gateway: succeeded, as the
    // sandbox's ledger says; the refused one triggered nothing (the next check is an hour away).
    for (const k of ['cur', 'prev']) await waitState(app, `api_rot${k}`, (s) => s === 'succeeded');
    await until(() => webhookChecksToRun(app), {
      done: (ids) => ids.length === 0,
      what: 'every webhook-triggered check run',
    });
    expect((await app.app.store.get('api_rotother'))?.state).toBe('pending');

    const lines = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const viaPrevious = lines.filter(
      (l) => l.msg === 'webhook signed with SAYSWITCH_SECRET_KEY_PREVIOUS: accepted',
    );
    expect(viaPrevious).toHaveLength(1);
    expect(lines.filter((l) => String(l.msg).includes('bad payloadSignature'))).toHaveLength(1);
    for (const line of logs) expect(line).not.toContain(PREVIOUS_KEY);
    // Nor any signature, accepted or refused.
    for (const sig of signatures) for (const line of logs) expect(line).not.toContain(sig);
  });
});
