import { afterEach, describe, expect, it } from 'vitest';
import {
  PROFILE_NAMES,
  startSandbox,
  type Ledger,
  type ProfileName,
  type Sandbox,
  type SandboxOptionsInput,
} from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import {
  callSandbox,
  chargeBody,
  payoutBody,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const PAYOUT = '/api/v1/bank_transfer';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

/**
 * A 3-D Secure challenge nobody ends expires after this (scaled by the 0.001 below: 5 s). The
 * profiles' own 10 minutes became 600 ms, and a loaded machine took longer than that between a
 * charge and its payer's answer: the challenge expired under the test, which then read a failure
 * where it had completed the payment.
 */
const CHALLENGE_MS = 5_000_000;

async function setup(
  profile: ProfileName,
  overrides: SandboxOptionsInput = {},
): Promise<{ sb: Sandbox; rx: WebhookReceiver }> {
  const rx = await startWebhookReceiver();
  open.push(rx);
  // As the chaos test will: the profile's minutes become milliseconds.
  const sb = await startSandbox({
    port: 0,
    profile,
    timeScale: 0.001,
    settleMs: 20,
    hangMs: 20,
    webhookUrl: rx.url,
    webhookShuffleWindowMs: 10,
    threeDsExpiryMs: CHALLENGE_MS,
    ...overrides,
  });
  open.unshift(sb);
  return { sb, rx };
}

/** What must hold of any ledger: moved money is counted once, in the totals, for a success. */
function expectTruthful(ledger: Ledger): void {
  const moved: Record<string, { movedMinor: number; count: number }> = {};
  for (const [ref, e] of Object.entries(ledger.references)) {
    const a = ledger.activity[ref]!;
    expect(a.moves, ref).toBeLessThanOrEqual(1);
    expect(a.moves - a.reversals, ref).toBe(e.moneyMoved ? 1 : 0);
    expect(e.moneyMoved, ref).toBe(e.status === 'success');
    expect(a.statuses.at(-1), ref).toBe(e.status);
    if (e.moneyMoved) {
      const t = (moved[e.currency] ??= { movedMinor: 0, count: 0 });
      t.movedMinor += e.amount;
      t.count++;
    }
  }
  for (const [currency, t] of Object.entries(ledger.totals)) {
    expect(t).toEqual(moved[currency] ?? { movedMinor: 0, count: 0 });
  }
}

describe.each(PROFILE_NAMES)('profile %s', (profile) => {
  it('runs programmatically, and its ledger tells the truth through every ending', async () => {
    const { sb, rx } = await setup(profile);
    const refs = ['00', '51', '52', '53', '54', '58'];
    // With 3-D Secure every charge waits for its payer: each is ended all ways as soon as it is
    // answered, but 58, left to expire.
    const ends = {
      '00': 'complete',
      '51': 'fail',
      '52': 'abandon',
      '53': 'complete',
      '54': 'complete',
    } as const;
    for (const rem of refs) {
      await callSandbox(sb, CHARGE, { body: chargeBody(`ch${rem}`, `30.${rem}`) });
      const end = ends[rem as keyof typeof ends];
      if (sb.unknowns.cardFlow === '3ds2' && end) {
        expect(sb.authenticate(`ch${rem}`, end).status, `ch${rem} ${end}`).toBe(200);
      }
      await callSandbox(sb, PAYOUT, { body: payoutBody(`po${rem}`, `30.${rem}`) });
    }
    const dup = await callSandbox(sb, PAYOUT, { body: payoutBody('po00', '30.00') });
    const expectedDuplicate = {
      '409': 409,
      '400': 400,
      '200-failure': 200,
      '200-echo': 200,
      '400-opaque': 400,
    }[sb.unknowns.duplicateReference];
    expect(dup.status).toBe(expectedDuplicate);

    if (sb.unknowns.cardFlow === '3ds2') {
      await until(() => sb.ledger().activity.ch58?.authentication === 'expired', {
        what: 'ch58 expired',
        timeoutMs: 20_000,
      });
    }
    // Everything final: no pending reference, every payout 58 reversed.
    const settled = await until(
      () => {
        const l = sb.ledger();
        const done =
          Object.values(l.references).every((e) => e.status !== 'pending') &&
          l.references.po58?.status === 'reversed';
        return done ? l : undefined;
      },
      { what: `${profile}: every reference final` },
    );
    expectTruthful(settled);
    expect(settled.activity.po00).toMatchObject({ submissions: 2, duplicates: 1, moves: 1 });

    // Lookups see everything once the (scaled) lag has passed.
    await until(async () => (await callSandbox(sb, '/api/v1/payout/po00')).status === 200, {
      what: 'po00 visible',
    });
    const verify = await callSandbox(sb, '/api/v1/transaction/verify/ch00');
    // In the profile's words (`statusWords`): the documented `success` or the extended `successful`.
    expect(verify.body.data.status).toBe(
      { documented: 'success', extended: 'successful' }[sb.unknowns.statusWords],
    );
    // Webhooks name every final charge, whatever their shape.
    await until(
      () =>
        refs.every((rem) =>
          rx.received.some((w) => w.json.data.reference === `ch${rem}` && w.json.data.status),
        ),
      { what: `${profile}: a webhook for every charge` },
    );
  });
});

describe('hostile', () => {
  it('answers every unknown the worst plausible way', async () => {
    // Its challenge never expires here: the payer abandons it.
    const { sb } = await setup('hostile', { threeDsExpiryMs: 600_000_000 });
    const first = await callSandbox(sb, CHARGE, { body: chargeBody('h_1', '10') });
    expect(first.body).toMatchObject({ status: true, message: 'Proceed authentication 3DS2' });
    const again = await callSandbox(sb, CHARGE, { body: chargeBody('h_1', '10') });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ success: false, message: 'Duplicate reference' });
    const missing = await callSandbox(sb, '/api/v1/payout/h_none');
    expect(missing.status).toBe(200);
    expect(missing.body.success).toBe(false);
    const payout = await callSandbox(sb, PAYOUT, { body: payoutBody('h_p', '10') });
    // In the extended words: `processing` for pending, and an abandoned challenge says so.
    expect(payout.body.data.status).toBe('processing');
    expect(sb.authenticate('h_1', 'abandon').status).toBe(200);
    // Past the (scaled) lag: not-found is a 200 too here, so wait for the transaction itself.
    const abandoned = await until(() => callSandbox(sb, '/api/v1/transaction/verify/h_1'), {
      done: (r) => r.body.success === true,
      what: 'h_1 visible',
    });
    expect(abandoned.body.data).toMatchObject({
      status: 'abandoned',
      gateway_response: 'Abandoned',
    });
    expect(sb.ledger().references.h_1).toMatchObject({ status: 'failed', moneyMoved: false });
  });
});
