/**
 * 3-D Secure through the real pipeline (API → BullMQ → worker → sandbox `cardFlow: 3ds2` →
 * reconciler, webhooks on): a challenged charge enters `requires_action` with the challenge URL
 * (on the intent, in the view, in the `payment.requires_action` event), and each ending of the
 * challenge gives what the gateway says: completed → succeeded, failed / abandoned / expired →
 * failed (`authentication_required`, the gateway's words in `message`), except an abandoned one
 * in the extended status words (hostile): `abandoned` is a word we do not know, so the payment is
 * never failed on it (pending, then needs_review). REQUIRES_ACTION_WINDOW:
 * once it has passed and the gateway still says pending, the payment is an ordinary pending one
 * (completed later → succeeded; never → needs_review), never failed by inference.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayment } from '../../src/payments/create.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import { PROFILES, type ProfileName, type Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { findFreePort } from '../support/redis-server.ts';
import { startTestSandbox } from '../support/sandbox.ts';

/**
 * A challenge nobody ends expires after this, scaled by the tests' timeScale 0.0025: 60 s, longer
 * than any test here. A sandbox whose challenges expire after the profile's own (scaled) 1.5 s is
 * kept for the tests about expiry: at 1.5 s for every test, a loaded machine took longer than that
 * to queue, submit and see a challenge before the test answered it, and the challenge expired
 * under it (409 to the test's `complete`, a failed payment where it wanted a success).
 */
const OUTLIVES_THE_TEST = { threeDsExpiryMs: 24_000_000 };

/** GET /payments/:reference needs a token (src/http/auth.ts). */
const READ = { headers: { authorization: `Bearer ${TEST_API_TOKEN}` } };

const charge = (key: string, amount: string) => ({
  type: 'charge',
  key,
  email: 'three-ds@example.com',
  amount,
  currency: 'NGN',
  card_token: 'tok_three_ds_0123456789',
});

function deps(t: TestApp) {
  return createDeps(t.app);
}

async function waitState(t: TestApp, key: string, state: string, timeoutMs = 20_000) {
  const intent = await until(() => t.app.store.get(key), {
    done: (i) => i?.state === state,
    what: () => `${key} ${state}`,
    timeoutMs,
  });
  return intent!;
}

/** Starts a sandbox posting webhooks to an app (api, worker, reconciler) it then starts. */
async function start(
  sandboxOpts: Parameters<typeof startTestSandbox>[0],
  env: Record<string, string>,
) {
  const port = await findFreePort();
  const sandbox = await startTestSandbox({
    webhookUrl: `http://127.0.0.1:${port}/webhooks/sayswitch`,
    ...sandboxOpts,
  });
  const t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api', 'worker', 'reconciler'],
    env: { PORT: String(port), ...env },
  });
  return { sandbox, t };
}

/** Creates a charge and waits for its challenge: the intent in `requires_action`. */
async function challenged(t: TestApp, key: string, amount = '10.00'): Promise<Intent> {
  const r = await createPayment(deps(t), charge(key, amount));
  expect(r.status).toBe('created');
  return waitState(t, `api_${key}`, 'requires_action');
}

describe.each<[ProfileName]>([['strict-docs'], ['hostile']])(
  '3-D Secure endings (profile %s)',
  (profile) => {
    let sandbox: Sandbox;
    let t: TestApp;
    /** Where challenges expire after 1.5 s (the profile's 10 minutes scaled): for expiry only. */
    let expiring: Sandbox;
    let te: TestApp;
    const tag = profile.replace(/-/g, '');

    beforeAll(async () => {
      // timeScale: hostile lookups are blind for 150 ms.
      ({ sandbox, t } = await start(
        { profile, timeScale: 0.0025, ...OUTLIVES_THE_TEST },
        { REQUIRES_ACTION_WINDOW: '1m' },
      ));
      ({ sandbox: expiring, t: te } = await start(
        { profile, timeScale: 0.0025 },
        { REQUIRES_ACTION_WINDOW: '1m' },
      ));
    });
    afterAll(async () => {
      await t?.close();
      await sandbox?.close();
      await te?.close();
      await expiring?.close();
    });

    it('completed → succeeded; the challenge URL is on the intent, the view and the event', async () => {
      const intent = await challenged(t, `ok${tag}`);
      const url = `${sandbox.url}/__sandbox/3ds/${intent.reference}`;
      expect(intent.authorizationUrl).toBe(url);
      expect(intent.seenAtGateway).toBeDefined();
      expect(intent.requiresActionUntil).toBeGreaterThan(intent.updatedAt);

      const view = (await (await fetch(`${t.url}/payments/${intent.key}`, READ)).json()) as Record<
        string,
        unknown
      >;
      expect(view).toMatchObject({ state: 'requires_action', authorizationUrl: url });
      const events = await t.app.events.read('-', 10_000);
      const asked = events.filter(
        (e) => e.type === 'payment.requires_action' && e.data.key === intent.key,
      );
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatchObject({
        id: `evt_${intent.reference}_requires_action`,
        data: { state: 'requires_action', authorizationUrl: url, reference: intent.reference },
      });

      const res = await fetch(`${sandbox.url}/__sandbox/3ds/${intent.reference}/complete`, {
        method: 'POST',
      });
      expect(res.status).toBe(200);
      const done = await waitState(t, intent.key, 'succeeded');
      const activity = sandbox.ledger().activity[intent.reference];
      expect(activity).toMatchObject({ moves: 1, authentication: 'completed' });
      const after = await t.app.events.read('-', 10_000);
      const succeeded = after.find(
        (e) => e.type === 'payment.succeeded' && e.data.key === intent.key,
      );
      // The sandbox returns no reusable authorization; the event says whether one is stored.
      expect(succeeded?.data).toMatchObject({ hasAuthorization: false });
      expect(done.authorizationSealed).toBeUndefined();
      // Out of requires_action the view no longer offers the challenge.
      const later = (await (await fetch(`${t.url}/payments/${intent.key}`, READ)).json()) as object;
      expect(later).not.toHaveProperty('authorizationUrl');
    });

    it('completed, settling later (52) → succeeded', async () => {
      const intent = await challenged(t, `settle${tag}`, '10.52');
      expect(sandbox.authenticate(intent.reference, 'complete').status).toBe(200);
      await waitState(t, intent.key, 'succeeded');
      expect(sandbox.ledger().activity[intent.reference]).toMatchObject({ moves: 1 });
    });

    // Under the extended status words an abandoned challenge says `abandoned`, a word the adapter
    // does not know: read as pending, never failed (the case after this one).
    const extended = PROFILES[profile].settings.statusWords === 'extended';
    const endings: (readonly ['fail' | 'abandon', string, string])[] = [
      ['fail', 'Authentication failed', 'failed'],
      ...(extended ? [] : [['abandon', 'Abandoned', 'abandoned'] as const]),
    ];
    it.each(endings)(
      '%s → failed (authentication_required), nothing moved',
      async (action, words, authentication) => {
        const intent = await challenged(t, `${action}${tag}`);
        const res = await fetch(`${sandbox.url}/__sandbox/3ds/${intent.reference}/${action}`, {
          method: 'POST',
        });
        expect(res.status).toBe(200);
        const failed = await waitState(t, intent.key, 'failed');
        expect(failed).toMatchObject({ reason: 'authentication_required', message: words });
        expect(sandbox.ledger().activity[intent.reference]).toMatchObject({
          moves: 0,
          authentication,
        });
      },
    );

    if (extended) {
      it('abandon, said `abandoned` (a word we do not know) → never failed: still requires_action, nothing moved', async () => {
        const intent = await challenged(t, `abandon${tag}`);
        const res = await fetch(`${sandbox.url}/__sandbox/3ds/${intent.reference}/abandon`, {
          method: 'POST',
        });
        expect(res.status).toBe(200);
        // The gateway's ledger has it failed; its wire says `abandoned`.
        expect(sandbox.ledger().references[intent.reference]).toMatchObject({ status: 'failed' });
        // Checked again and again after the abandon (webhooks and the schedule), never failed.
        const checks = (await t.app.store.get(intent.key))!.checks;
        const later = await until(() => t.app.store.get(intent.key), {
          done: (i) => i !== undefined && (i.checks >= checks + 3 || i.state !== 'requires_action'),
          what: `${intent.key} checked three more times`,
          timeoutMs: 20_000,
        });
        expect(later!.state).toBe('requires_action');
        const history = await t.app.store.history(intent.key);
        expect(history.map((h) => h.to)).toEqual(['queued', 'submitting', 'requires_action']);
        expect(sandbox.ledger().activity[intent.reference]).toMatchObject({
          moves: 0,
          authentication: 'abandoned',
        });
      });
    }

    it('expired (nobody acted) → failed (authentication_required), nothing moved', async () => {
      const intent = await challenged(te, `exp${tag}`);
      const failed = await waitState(te, intent.key, 'failed');
      expect(failed).toMatchObject({
        reason: 'authentication_required',
        message: 'Authentication expired',
      });
      expect(expiring.ledger().activity[intent.reference]).toMatchObject({
        moves: 0,
        authentication: 'expired',
      });
    });

    it('a challenge hidden behind a 500 (54): unknown, then the gateway word (expired) fails it', async () => {
      await createPayment(deps(te), charge(`hid${tag}`, '10.54'));
      const key = `api_hid${tag}`;
      const failed = await waitState(te, key, 'failed');
      const history = await te.app.store.history(key);
      expect(history.map((h) => h.to)).toEqual(['queued', 'submitting', 'unknown', 'failed']);
      expect(failed.message).toBe('Authentication expired');
      expect(expiring.ledger().activity[failed.reference]).toMatchObject({ moves: 0 });
    });
  },
);

describe('REQUIRES_ACTION_WINDOW: the gateway decides, never the clock', () => {
  let sandbox: Sandbox;
  let t: TestApp;

  beforeAll(async () => {
    // The challenge outlives the window by far: after the window the gateway still says pending.
    ({ sandbox, t } = await start(
      { profile: 'strict-docs', threeDsExpiryMs: 120_000 },
      { REQUIRES_ACTION_WINDOW: '500ms' },
    ));
  });
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });

  it('past the window and still pending: pending; completed later → succeeded', async () => {
    const intent = await challenged(t, 'late');
    await waitState(t, intent.key, 'pending');
    const history = await t.app.store.history(intent.key);
    expect(history.at(-1)).toMatchObject({
      from: 'requires_action',
      to: 'pending',
      reason: 'requires_action_window_passed',
    });
    expect(sandbox.authenticate(intent.reference, 'complete').status).toBe(200);
    await waitState(t, intent.key, 'succeeded');
    expect(sandbox.ledger().activity[intent.reference]).toMatchObject({ moves: 1 });
  });

  it('past the window and never acted on: checks exhausted → needs_review, not failed', async () => {
    const intent = await challenged(t, 'never');
    const review = await waitState(t, intent.key, 'needs_review');
    const history = await t.app.store.history(review.key);
    expect(history.map((h) => h.to)).toEqual([
      'queued',
      'submitting',
      'requires_action',
      'pending',
      'needs_review',
    ]);
    expect(sandbox.ledger().activity[intent.reference]).toMatchObject({
      moves: 0,
      authentication: 'awaiting',
    });
  });
});

describe('an abandoned challenge in words we do not know (hostile: `abandoned`)', () => {
  let sandbox: Sandbox;
  let t: TestApp;

  beforeAll(async () => {
    // hostile's vocabulary is `extended`; lookups blind for 150 ms; a window shorter than the test.
    ({ sandbox, t } = await start(
      { profile: 'hostile', timeScale: 0.0025, ...OUTLIVES_THE_TEST },
      { REQUIRES_ACTION_WINDOW: '500ms' },
    ));
  });
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });

  it('stays pending at our side and ends needs_review, never failed', async () => {
    expect(sandbox.unknowns.statusWords).toBe('extended');
    const intent = await challenged(t, 'abandonedword');
    expect(sandbox.authenticate(intent.reference, 'abandon').status).toBe(200);
    const review = await waitState(t, intent.key, 'needs_review');
    const history = await t.app.store.history(review.key);
    expect(history.map((h) => h.to)).toEqual([
      'queued',
      'submitting',
      'requires_action',
      'pending',
      'needs_review',
    ]);
    expect(sandbox.ledger().references[intent.reference]).toMatchObject({
      status: 'failed',
      moneyMoved: false,
    });
    expect(sandbox.ledger().activity[intent.reference]).toMatchObject({
      moves: 0,
      authentication: 'abandoned',
    });
  });
});

describe('a reusable card authorization returned with a success', () => {
  it('is stored sealed, said to exist in the event, and never logged or shown', async () => {
    const logs: string[] = [];
    const sandbox = await startTestSandbox();
    const t = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['api', 'worker', 'reconciler'],
      env: { LOG_LEVEL: 'debug' },
      logDestination: { write: (line: string) => void logs.push(line) },
    });
    try {
      const secret = 'AUTH_reusable_5ecret_0123';
      const gateway = t.app.gateway;
      const chargeCard = gateway.chargeCard.bind(gateway);
      gateway.chargeCard = async (req) => {
        const outcome = await chargeCard(req);
        return outcome.status === 'succeeded' ? { ...outcome, authorization: secret } : outcome;
      };
      await createPayment(deps(t), charge('auth1', '10.00'));
      const intent = await waitState(t, 'api_auth1', 'succeeded');
      expect(intent.authorizationSealed).toBeDefined();
      expect(intent.authorizationSealed).not.toContain(secret);
      expect(t.app.sealer.unseal(intent.authorizationSealed!)).toBe(secret);

      const events = await t.app.events.read('-', 10_000);
      const succeeded = events.find((e) => e.type === 'payment.succeeded');
      expect(succeeded?.data).toMatchObject({ key: 'api_auth1', hasAuthorization: true });
      const view = await (await fetch(`${t.url}/payments/api_auth1`, READ)).text();
      for (const text of [view, JSON.stringify(events), logs.join('\n')]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(intent.authorizationSealed!);
      }
      expect(logs.length).toBeGreaterThan(0);
    } finally {
      await t.close();
      await sandbox.close();
    }
  });
});
