/**
 * The resubmission rule (payments/resubmission.ts) against every sandbox profile: money moves (54:
 * moved, then HTTP 500), a lagging lookup makes verify say "not found" past the grace period, the
 * same reference is resubmitted and the gateway answers the duplicate in its profile's shape (409,
 * 400 validation failure, 200 `success: false`, 200 echo). Whatever the shape, the payment never
 * ends `failed` while the sandbox ledger says money moved, and never gets a second reference.
 * When the lookup never shows the reference within the checks: `needs_review`, still not `failed`.
 * A refusal (HTTP 400 in words the adapter does not know) or a decline answering the resubmission
 * is verified, not adopted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FatalError } from '../../src/kernel/errors.ts';
import type { GatewayOutcome, PaymentGateway } from '../../src/kernel/ports.ts';
import { createPayment } from '../../src/payments/create.ts';
import type { ProfileName, Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

/** Lookups blind this long after a reference is recorded: past the 200 ms not-found grace. */
const LAG_MS = 3_000;
/** Checks that outlast the lag (the FAST_ENV schedule is 5.4 s). */
const PATIENT = {};
/** Checks that give up (0.6 s) long before the lag ends. */
const IMPATIENT = { RECONCILE_SCHEDULE: '100ms,200ms,300ms' };

const PROFILES: [ProfileName, string][] = [
  ['default', '409'],
  ['strict-docs', '409'],
  ['hostile', '200 success:false, not-found as 200'],
  ['laravel-unique', '400 validation failure'],
  ['idempotent-replay', '200 echo'],
];

const charge = (key: string, amount: string) => ({
  type: 'charge',
  key,
  email: 'resub@example.com',
  amount,
  currency: 'NGN',
  card_token: 'tok_resubmit_0123456789',
});
const payout = (key: string, amount: string) => ({
  type: 'payout',
  key,
  account_number: '0123456789',
  bank_code: '000013',
  bank_name: 'GTBank',
  account_name: 'Ada Lovelace',
  amount,
  currency: 'NGN',
  narration: 'resubmission test',
});

function deps(t: TestApp) {
  return createDeps(t.app);
}

const SETTLED = new Set(['succeeded', 'failed', 'reversed', 'needs_review']);

async function settled(t: TestApp, key: string, timeoutMs = 20_000) {
  const intent = await until(() => t.app.store.get(key), {
    done: (i) => i !== undefined && SETTLED.has(i.state),
    what: `${key} settled`,
    timeoutMs,
  });
  return intent!;
}

/**
 * What the sandbox says of the intent's money: exactly one reference (attempt 1's) was ever
 * recorded for it, and how often it was submitted, answered as a duplicate, and moved.
 */
function ledgerOf(sandbox: Sandbox, key: string) {
  const ledger = sandbox.ledger();
  const refs = Object.keys(ledger.activity).filter((r) => r.startsWith(`${key}_`));
  expect(refs, `${key}: references seen by the gateway`).toEqual([`${key}_1`]);
  const activity = ledger.activity[`${key}_1`]!;
  return { activity, moved: ledger.references[`${key}_1`]?.moneyMoved ?? false };
}

describe.each(PROFILES)('profile %s (duplicate answered as %s)', (profile) => {
  let sandbox: Sandbox;
  let patient: TestApp;
  let impatient: TestApp;
  /** Charges whose resubmission the wrapped gateway answers badly, by reference. */
  const answers = new Map<string, 'refuse' | 'decline'>();

  beforeAll(async () => {
    sandbox = await startTestSandbox({
      profile,
      cardFlow: 'settled',
      lookupLagMs: LAG_MS,
      hangMs: 1_000,
    });
    patient = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['worker', 'reconciler'],
      env: PATIENT,
    });
    impatient = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['worker', 'reconciler'],
      env: IMPATIENT,
    });
    // The real gateway, except that the first resubmission of chosen references gets, after it
    // reached the sandbox, an answer the sandbox does not give: a 400 in unknown words, or a
    // decline. Later resubmissions get the sandbox's own answers.
    const gateway: PaymentGateway = patient.app.gateway;
    const chargeCard = gateway.chargeCard.bind(gateway);
    const sent = new Map<string, number>();
    gateway.chargeCard = async (req): Promise<GatewayOutcome> => {
      const n = (sent.get(req.reference) ?? 0) + 1;
      sent.set(req.reference, n);
      const answer = answers.get(req.reference);
      if (n !== 2 || answer === undefined) return chargeCard(req);
      await chargeCard(req).catch(() => undefined);
      if (answer === 'refuse') throw new FatalError('refused (HTTP 400)', 'bad_request');
      return { reference: req.reference, status: 'failed', reason: 'declined', message: 'Nope' };
    };
  });

  afterAll(async () => {
    await patient?.close();
    await impatient?.close();
    await sandbox?.close();
  });

  it('a resubmitted reference whose money moved ends succeeded, under its one reference', async () => {
    const tag = profile.replace(/-/g, '');
    await createPayment(deps(patient), charge(`rc${tag}`, '10.54'));
    await createPayment(deps(patient), payout(`rp${tag}`, '10.54'));
    for (const key of [`api_rc${tag}`, `api_rp${tag}`]) {
      const intent = await settled(patient, key);
      const { activity, moved } = ledgerOf(sandbox, key);
      expect(moved).toBe(true);
      expect(activity.moves).toBe(1);
      expect(intent.state, key).toBe('succeeded');
      expect(intent.attempt).toBe(1);
      const history = await patient.app.store.history(key);
      // The resubmission happened, and the gateway answered it as a duplicate.
      expect(history.some((h) => h.reason === 'verified_unsent')).toBe(true);
      expect(activity.submissions).toBeGreaterThanOrEqual(2);
      expect(activity.duplicates).toBeGreaterThanOrEqual(1);
      expect(history.some((h) => h.to === 'failed')).toBe(false);
    }
  });

  it('checks exhausted before the lookup shows the reference: needs_review, never failed', async () => {
    const tag = profile.replace(/-/g, '');
    await createPayment(deps(impatient), charge(`ic${tag}`, '11.54'));
    await createPayment(deps(impatient), payout(`ip${tag}`, '11.54'));
    for (const key of [`api_ic${tag}`, `api_ip${tag}`]) {
      const intent = await settled(impatient, key);
      const { activity } = ledgerOf(sandbox, key);
      const history = await impatient.app.store.history(key);
      expect(
        history.some((h) => h.to === 'failed'),
        key,
      ).toBe(false);
      expect(history.some((h) => h.reason === 'verified_unsent')).toBe(true);
      if (profile === 'idempotent-replay') {
        // The duplicate is answered with the original transaction: its word settles it at once.
        expect(intent.state).toBe('succeeded');
      } else {
        expect(intent.state, key).toBe('needs_review');
        expect(history.at(-1)?.reason).toBe('reconcile_exhausted');
        // After the duplicate answer "not found" proved nothing: no further resubmission.
        expect(activity.submissions).toBe(2);
        expect(intent.seenAtGateway).toBeDefined();
      }
      // The sandbox's word (once its read side catches up): the money did move.
      expect(
        await until(() => sandbox.ledger().references[`${key}_1`]?.moneyMoved, {
          what: `${key} moved at the sandbox`,
        }),
      ).toBe(true);
    }
  });

  it('a resubmission refused (400, unknown words) or declined is verified, not adopted', async () => {
    const tag = profile.replace(/-/g, '');
    const refused = `api_rf${tag}`;
    const declined = `api_dc${tag}`;
    answers.set(`${refused}_1`, 'refuse');
    answers.set(`${declined}_1`, 'decline');
    await createPayment(deps(patient), charge(`rf${tag}`, '12.54'));
    await createPayment(deps(patient), charge(`dc${tag}`, '13.54'));
    for (const [key, reason] of [
      [refused, 'bad_request'],
      [declined, 'verify_failed_answer'],
    ] as const) {
      const intent = await settled(patient, key);
      const { moved } = ledgerOf(sandbox, key);
      expect(moved).toBe(true);
      expect(intent.state, key).toBe('succeeded');
      const history = await patient.app.store.history(key);
      expect(history.some((h) => h.to === 'failed')).toBe(false);
      // The resubmission's answer sent it to verification.
      expect(
        history.some((h) => h.to === 'unknown' && h.reason === reason),
        key,
      ).toBe(true);
    }
  });
});
