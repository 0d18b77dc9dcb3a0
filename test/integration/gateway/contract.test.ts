/**
 * The adapter against the sandbox over real HTTP. First one contract suite, run with payload
 * encryption off and on: every sandbox outcome (51–58) for charges and payouts, with the sandbox
 * ledger as the truth of what money moved. Then the same adapter against every sandbox profile
 * (docs/sayswitch-wire.md "The matrix of unknowns"): first answers, a resubmitted reference in
 * each duplicate shape, a duplicate whose lookup is blind, not-found in both shapes, the 3-D
 * Secure challenge, asynchronous payouts and both webhook shapes.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FatalError,
  OutcomeUnknownError,
  RateLimitedError,
  RetryableError,
  type BillingError,
} from '../../../src/kernel/errors.ts';
import type { AttemptReference } from '../../../src/kernel/ids.ts';
import { amountMinor } from '../../../src/kernel/money.ts';
import type {
  ChargeRequest,
  GatewayOutcome,
  LookupOutcome,
  PayoutRequest,
} from '../../../src/kernel/ports.ts';
import {
  DuplicateReferenceUnresolvedError,
  SayswitchGateway,
  referenceExistsAtGateway,
  type SayswitchOptions,
} from '../../../src/infra/gateway/sayswitch/client.ts';
import type { PayloadCryptoConfig } from '../../../src/infra/gateway/sayswitch/crypto.ts';
import { parseWebhook } from '../../../src/infra/gateway/sayswitch/webhook.ts';
import {
  PROFILE_NAMES,
  startSandbox,
  type ProfileName,
  type SandboxOptionsInput,
} from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/sandbox.ts';

const SECRET = 'sk_test_contract';
const SETTLE_MS = 200;
const POLL_DEADLINE_MS = 15_000;
/**
 * The client's deadline against a 55, whose answer the sandbox holds for 10 s: long enough for
 * the request to be connected and sent first on a loaded machine (at 300 ms it sometimes was not,
 * and a deadline before the request is out is "nothing was sent", not outcome_unknown).
 */
const HELD_TIMEOUT_MS = 2_000;

type Sandbox = Awaited<ReturnType<typeof startSandbox>>;

async function rejection(p: Promise<unknown>): Promise<BillingError> {
  try {
    await p;
  } catch (err) {
    return err as BillingError;
  }
  throw new Error('expected a rejection');
}

/** A port that nothing listens on: bind one, then close it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const modes: { name: string; encryption: PayloadCryptoConfig | undefined }[] = [
  { name: 'encryption off', encryption: undefined },
  {
    name: 'encryption on (hex)',
    encryption: {
      key: 'contract-key-0123456789abcdefghi',
      iv: 'contract-iv-0123',
      encoding: 'hex',
    },
  },
];

describe.each(modes)('Sayswitch contract ($name)', ({ encryption }) => {
  let sandbox: Sandbox;
  const gateways: SayswitchGateway[] = [];
  let n = 0;

  const gateway = (extra: Partial<SayswitchOptions> = {}): SayswitchGateway => {
    const g = new SayswitchGateway({
      baseUrl: sandbox.url,
      secretKey: SECRET,
      timeoutMs: 5_000,
      ...(encryption ? { encryption } : {}),
      ...extra,
    });
    gateways.push(g);
    return g;
  };
  const nextRef = (label: string): AttemptReference =>
    `api_ct_${label}_${++n}_1` as AttemptReference;
  const charge = (minor: number, label = 'c'): ChargeRequest => ({
    reference: nextRef(label),
    amount: amountMinor(minor),
    currency: 'NGN',
    email: 'payer@example.com',
    cardToken: 'opaque-card-token',
  });
  const payout = (minor: number, label = 'p'): PayoutRequest => ({
    reference: nextRef(label),
    amount: amountMinor(minor),
    currency: 'NGN',
    accountNumber: '0123456789',
    bankCode: '000013',
    bankName: 'GTBank',
    accountName: 'Ada Obi',
    narration: 'contract test',
    paymentMode: 'bank',
  });
  const entry = (ref: string) => sandbox.ledger().references[ref];

  const start = (settleMs: number): Promise<Sandbox> =>
    startSandbox({
      port: 0,
      secretKey: SECRET,
      ...(encryption
        ? { encryption: { key: encryption.key, iv: encryption.iv, encoding: encryption.encoding } }
        : {}),
      settleMs,
      hangMs: 10_000,
      latencyMs: 0,
      faultRate: 0,
      seed: 7,
    });

  beforeAll(async () => {
    sandbox = await start(SETTLE_MS);
  });

  afterAll(async () => {
    for (const g of gateways) g.close();
    await sandbox.close();
  });

  describe('charges', () => {
    it('other remainders succeed with the requested amount and the fee kept apart', async () => {
      const req = charge(150_000);
      const out = await gateway().chargeCard(req);
      // 1.2 % of 1500.00 = 18.00
      expect(out).toMatchObject({
        reference: req.reference,
        status: 'succeeded',
        amount: 150_000,
        fee: 1_800,
      });
      expect(entry(req.reference)).toEqual({
        kind: 'charge',
        amount: 150_000,
        currency: 'NGN',
        status: 'success',
        moneyMoved: true,
      });
      expect(await gateway().verifyCharge(req.reference)).toMatchObject({
        status: 'succeeded',
        amount: 150_000,
        fee: 1_800,
      });
    });

    it('51 is a decline result, no money moved', async () => {
      const req = charge(10_051);
      expect(await gateway().chargeCard(req)).toMatchObject({
        status: 'failed',
        reason: 'declined',
        message: 'Declined',
      });
      expect(entry(req.reference)).toMatchObject({ status: 'failed', moneyMoved: false });
    });

    it('52 is pending, then verify settles to succeeded', async () => {
      const req = charge(10_052);
      const g = gateway();
      expect((await g.chargeCard(req)).status).toBe('pending');
      const settled = await until(() => g.verifyCharge(req.reference), {
        done: (o) => o.status !== 'pending',
        what: `${req.reference} settled (verifyCharge)`,
        timeoutMs: POLL_DEADLINE_MS,
      });
      expect(settled).toMatchObject({ status: 'succeeded', amount: 10_052 });
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
      // Pending, money unmoved, until it settled: read from the ledger's history once final (a
      // look right after the answer raced the 200 ms settlement on a loaded machine).
      expect(sandbox.ledger().activity[req.reference]).toMatchObject({
        statuses: ['pending', 'success'],
        moves: 1,
      });
    });

    it('53 is pending, then verify settles to failed', async () => {
      const req = charge(10_053);
      const g = gateway();
      expect((await g.chargeCard(req)).status).toBe('pending');
      const settled = await until(() => g.verifyCharge(req.reference), {
        done: (o) => o.status !== 'pending',
        what: `${req.reference} settled (verifyCharge)`,
        timeoutMs: POLL_DEADLINE_MS,
      });
      expect(settled).toMatchObject({ status: 'failed' });
      expect(entry(req.reference)).toMatchObject({ status: 'failed', moneyMoved: false });
    });

    it('54 is outcome_unknown (HTTP 500) but the money moved, and verify says so', async () => {
      const req = charge(10_054);
      const err = await rejection(gateway().chargeCard(req));
      expect(err).toBeInstanceOf(OutcomeUnknownError);
      expect(err.code).toBe('server_error');
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
      expect((await gateway().verifyCharge(req.reference)).status).toBe('succeeded');
    });

    it('55 times out as outcome_unknown while the money moved', async () => {
      const req = charge(10_055);
      const err = await rejection(gateway({ timeoutMs: HELD_TIMEOUT_MS }).chargeCard(req));
      expect(err).toBeInstanceOf(OutcomeUnknownError);
      expect(err.code).toBe('timeout');
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
      expect((await gateway().verifyCharge(req.reference)).status).toBe('succeeded');
    });

    it('56 is outcome_unknown (HTTP 500) and verify proves nothing was recorded', async () => {
      const req = charge(10_056);
      expect(await rejection(gateway().chargeCard(req))).toBeInstanceOf(OutcomeUnknownError);
      expect(entry(req.reference)).toBeUndefined();
      expect(await gateway().verifyCharge(req.reference)).toEqual({
        status: 'not_found',
        reference: req.reference,
      });
    });

    it('57 is rate_limited with Retry-After 1 s; the retry after waiting succeeds', async () => {
      const req = charge(10_057);
      const g = gateway();
      const err = await rejection(g.chargeCard(req));
      expect(err).toBeInstanceOf(RateLimitedError);
      expect(err.retryAfterMs).toBe(1_000);
      expect(entry(req.reference)).toBeUndefined();
      await new Promise((resolve) => setTimeout(resolve, err.retryAfterMs));
      expect(await g.chargeCard(req)).toMatchObject({ status: 'succeeded', amount: 10_057 });
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
    });

    it('58 is a plain success for a charge', async () => {
      const req = charge(10_058);
      expect((await gateway().chargeCard(req)).status).toBe('succeeded');
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
    });

    it('409 on a reused reference is adopted via verify, without moving money twice', async () => {
      const req = charge(20_000);
      const g = gateway();
      await g.chargeCard(req);
      const totalsBefore = sandbox.ledger().totals;
      expect(await g.chargeCard(req)).toMatchObject({
        reference: req.reference,
        status: 'succeeded',
        amount: 20_000,
      });
      expect(sandbox.ledger().totals).toEqual(totalsBefore);

      // A pending one is adopted as pending: on a sandbox where it never settles, since the
      // 200 ms settlement here could pass between the two submissions on a loaded machine.
      const unsettled = await start(3_600_000);
      try {
        const slow = gateway({ baseUrl: unsettled.url });
        const pending = charge(20_052);
        await slow.chargeCard(pending);
        expect((await slow.chargeCard(pending)).status).toBe('pending');
      } finally {
        await unsettled.close();
      }
    });

    it('verify of an unknown reference is not_found', async () => {
      expect(await gateway().verifyCharge('api_ct_never_seen_1')).toEqual({
        status: 'not_found',
        reference: 'api_ct_never_seen_1',
      });
    });
  });

  describe('payouts', () => {
    it('other remainders succeed with the flat fee', async () => {
      const req = payout(500_000);
      expect(await gateway().payout(req)).toMatchObject({
        status: 'succeeded',
        amount: 500_000,
        fee: 1_000,
      });
      expect(entry(req.reference)).toEqual({
        kind: 'payout',
        amount: 500_000,
        currency: 'NGN',
        status: 'success',
        moneyMoved: true,
      });
      expect(await gateway().lookupPayout(req.reference)).toMatchObject({
        status: 'succeeded',
        amount: 500_000,
      });
    });

    it('51 is a failed result', async () => {
      const req = payout(10_051);
      expect(await gateway().payout(req)).toMatchObject({ status: 'failed', reason: 'declined' });
      expect(entry(req.reference)).toMatchObject({ status: 'failed', moneyMoved: false });
    });

    it('52 pending → succeeded by lookup', async () => {
      const req = payout(10_052);
      const g = gateway();
      expect((await g.payout(req)).status).toBe('pending');
      const settled = await until(() => g.lookupPayout(req.reference), {
        done: (o) => o.status !== 'pending',
        what: `${req.reference} settled (lookupPayout)`,
        timeoutMs: POLL_DEADLINE_MS,
      });
      expect(settled.status).toBe('succeeded');
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
    });

    it('53 pending → failed by lookup', async () => {
      const req = payout(10_053);
      const g = gateway();
      expect((await g.payout(req)).status).toBe('pending');
      const settled = await until(() => g.lookupPayout(req.reference), {
        done: (o) => o.status !== 'pending',
        what: `${req.reference} settled (lookupPayout)`,
        timeoutMs: POLL_DEADLINE_MS,
      });
      expect(settled.status).toBe('failed');
      expect(entry(req.reference)).toMatchObject({ status: 'failed', moneyMoved: false });
    });

    it('54 is outcome_unknown but the money moved', async () => {
      const req = payout(10_054);
      expect(await rejection(gateway().payout(req))).toBeInstanceOf(OutcomeUnknownError);
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
      expect((await gateway().lookupPayout(req.reference)).status).toBe('succeeded');
    });

    it('55 times out as outcome_unknown while the money moved', async () => {
      const req = payout(10_055);
      const err = await rejection(gateway({ timeoutMs: HELD_TIMEOUT_MS }).payout(req));
      expect(err).toBeInstanceOf(OutcomeUnknownError);
      expect(err.code).toBe('timeout');
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
    });

    it('56 is outcome_unknown and lookup proves nothing was recorded', async () => {
      const req = payout(10_056);
      expect(await rejection(gateway().payout(req))).toBeInstanceOf(OutcomeUnknownError);
      expect(entry(req.reference)).toBeUndefined();
      expect((await gateway().lookupPayout(req.reference)).status).toBe('not_found');
    });

    it('57 is rate_limited, then the retry succeeds', async () => {
      const req = payout(10_057);
      const g = gateway();
      const err = await rejection(g.payout(req));
      expect(err).toBeInstanceOf(RateLimitedError);
      expect(err.retryAfterMs).toBe(1_000);
      await new Promise((resolve) => setTimeout(resolve, err.retryAfterMs));
      expect((await g.payout(req)).status).toBe('succeeded');
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
    });

    it('58 succeeds, then lookup shows it reversed and the ledger un-moves the money', async () => {
      const req = payout(10_058);
      const g = gateway();
      expect((await g.payout(req)).status).toBe('succeeded');
      const reversed = await until(() => g.lookupPayout(req.reference), {
        done: (o) => o.status === 'reversed',
        what: `${req.reference} reversed (lookupPayout)`,
        timeoutMs: POLL_DEADLINE_MS,
      });
      expect(reversed).toMatchObject({ status: 'reversed', amount: 10_058 });
      expect(entry(req.reference)).toMatchObject({ status: 'reversed', moneyMoved: false });
    });

    it('409 on a reused reference is adopted via payout lookup', async () => {
      const req = payout(30_000);
      const g = gateway();
      await g.payout(req);
      expect(await g.payout(req)).toMatchObject({
        reference: req.reference,
        status: 'succeeded',
        amount: 30_000,
      });
      expect(
        Object.keys(sandbox.ledger().references).filter((r) => r === req.reference),
      ).toHaveLength(1);
    });
  });

  describe('reads', () => {
    it('lists banks, resolves an account name and reads the wallet', async () => {
      const g = gateway();
      const banks = await g.listBanks('NGN');
      expect(banks.length).toBeGreaterThan(0);
      const bank = banks[0]!;
      expect(
        await g.resolveAccountName({
          bankCode: bank.code,
          accountNumber: '0123456789',
          currency: 'NGN',
        }),
      ).toMatch(/\S/);
      const failed = await rejection(
        g.resolveAccountName({ bankCode: bank.code, accountNumber: '0123450000', currency: 'NGN' }),
      );
      expect(failed).toBeInstanceOf(FatalError);
      const wallet = await g.walletBalance('NGN');
      expect(wallet.currency).toBe('NGN');
      expect(Number.isSafeInteger(wallet.balance)).toBe(true);
    });
  });

  describe('transport and auth', () => {
    it('a wrong key is fatal with authFailure, on submissions and lookups', async () => {
      const g = gateway({ secretKey: 'sk_test_wrong' });
      const req = charge(40_000);
      const err = await rejection(g.chargeCard(req));
      expect(err).toBeInstanceOf(FatalError);
      expect(err.authFailure).toBe(true);
      expect(err.message).not.toContain('sk_test_wrong');
      expect((await rejection(g.lookupPayout(req.reference))).authFailure).toBe(true);
      expect(entry(req.reference)).toBeUndefined();
    });

    it('a refused connection is retryable', async () => {
      const port = await closedPort();
      const g = gateway({ baseUrl: `http://127.0.0.1:${port}` });
      const err = await rejection(g.chargeCard(charge(50_000)));
      expect(err).toBeInstanceOf(RetryableError);
      expect(err.code).toBe('connection_refused');
    });
  });
});

/**
 * Every profile, against the adapter. Each profile runs on three sandboxes: as it is (its minutes
 * scaled to milliseconds), with its cards forced through 3-D Secure, and with its lookups blind
 * for longer than the test (the read-after-write lag at its worst). Nothing asserts on time: what
 * takes time is awaited with `until`.
 */
const TIME_SCALE = 0.001;
/** Scaled by TIME_SCALE: a challenge outlives any test (nobody relies on it expiring). */
const LONG_CHALLENGE_MS = 3_600_000_000;
/** Scaled by 1: lookups that stay blind for the whole test. */
const BLIND_LAG_MS = 3_600_000;

const profileCases: { profile: ProfileName; encryption: PayloadCryptoConfig | undefined }[] = [
  ...PROFILE_NAMES.map((profile) => ({ profile, encryption: undefined })),
  {
    profile: 'hostile',
    encryption: {
      key: 'profile-key-0123456789abcdefghij',
      iv: 'profile-iv-01234',
      encoding: 'hex',
    },
  },
];

describe.each(profileCases)('Sayswitch contract, profile $profile', ({ profile, encryption }) => {
  let sb: Sandbox;
  let sb3ds: Sandbox;
  let blind: Sandbox;
  let receiver: WebhookReceiver;
  const gateways: SayswitchGateway[] = [];
  let n = 0;

  const start = (extra: SandboxOptionsInput): Promise<Sandbox> =>
    startSandbox({
      port: 0,
      secretKey: SECRET,
      ...(encryption
        ? { encryption: { key: encryption.key, iv: encryption.iv, encoding: encryption.encoding } }
        : {}),
      profile,
      settleMs: SETTLE_MS,
      hangMs: 10_000,
      seed: 11,
      ...extra,
    });

  const gatewayOf = (sandbox: Sandbox): SayswitchGateway => {
    const g = new SayswitchGateway({
      baseUrl: sandbox.url,
      secretKey: SECRET,
      timeoutMs: 5_000,
      ...(encryption ? { encryption } : {}),
    });
    gateways.push(g);
    return g;
  };
  const ref = (label: string): AttemptReference => `api_pf_${label}_${++n}_1` as AttemptReference;
  const charge = (minor: number, label = 'c'): ChargeRequest => ({
    reference: ref(label),
    amount: amountMinor(minor),
    currency: 'NGN',
    email: 'payer@example.com',
    cardToken: 'opaque-card-token',
  });
  const payout = (minor: number, label = 'p'): PayoutRequest => ({
    reference: ref(label),
    amount: amountMinor(minor),
    currency: 'NGN',
    accountNumber: '0123456789',
    bankCode: '000013',
    bankName: 'GTBank',
    accountName: 'Ada Obi',
    narration: 'profile contract',
    paymentMode: 'bank',
  });

  /** Polls a lookup until it shows the reference (past the lag) and `done` holds. */
  const lookupUntil = (
    lookup: () => Promise<LookupOutcome>,
    what: string,
    done: (o: LookupOutcome) => boolean = (o) => o.status !== 'not_found',
  ): Promise<LookupOutcome> => until(lookup, { done, what, timeoutMs: POLL_DEADLINE_MS });
  const final = (o: LookupOutcome) => o.status !== 'not_found' && o.status !== 'pending';

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    sb = await start({
      timeScale: TIME_SCALE,
      threeDsExpiryMs: LONG_CHALLENGE_MS,
      webhookUrl: receiver.url,
      webhookShuffleWindowMs: 10,
    });
    sb3ds = await start({
      timeScale: TIME_SCALE,
      threeDsExpiryMs: LONG_CHALLENGE_MS,
      cardFlow: '3ds2',
    });
    blind = await start({ timeScale: 1, lookupLagMs: BLIND_LAG_MS });
  });

  afterAll(async () => {
    for (const g of gateways) g.close();
    await Promise.all([sb, sb3ds, blind].filter(Boolean).map((x) => x.close()));
    await receiver?.close();
  });

  describe('first submissions', () => {
    it('a charge: the answer (settled or challenged), then verify past any lag', async () => {
      const g = gatewayOf(sb);
      const req = charge(150_000);
      const first = await g.chargeCard(req);
      if (sb.unknowns.cardFlow === 'settled') {
        expect(first).toMatchObject({ status: 'succeeded', amount: 150_000, fee: 1_800 });
      } else {
        expect(first).toMatchObject({
          reference: req.reference,
          status: 'requires_action',
          authorizationUrl: `${sb.url}/__sandbox/3ds/${req.reference}`,
          message: 'Proceed authentication 3DS2',
        });
        expect(sb.ledger().references[req.reference]).toMatchObject({ moneyMoved: false });
        expect(sb.authenticate(req.reference, 'complete').status).toBe(200);
      }
      const seen = await lookupUntil(
        () => g.verifyCharge(req.reference),
        `${req.reference} verified`,
        final,
      );
      expect(seen).toMatchObject({ status: 'succeeded', amount: 150_000, fee: 1_800 });
    });

    it('a declined charge (51) fails, after its challenge if there is one', async () => {
      const g = gatewayOf(sb);
      const req = charge(10_051);
      const first = await g.chargeCard(req);
      if (sb.unknowns.cardFlow === '3ds2') {
        expect(first.status).toBe('requires_action');
        sb.authenticate(req.reference, 'complete');
      } else {
        expect(first).toMatchObject({ status: 'failed', reason: 'declined' });
      }
      const seen = await lookupUntil(
        () => g.verifyCharge(req.reference),
        `${req.reference} verified`,
        final,
      );
      expect(seen).toMatchObject({ status: 'failed', reason: 'declined', message: 'Declined' });
    });

    it('a payout: its outcome at once (sync) or pending first (async), then the lookup', async () => {
      const g = gatewayOf(sb);
      const ok = payout(500_000);
      const declined = payout(10_051);
      const firstOk = await g.payout(ok);
      const firstDeclined = await g.payout(declined);
      if (sb.unknowns.payoutFlow === 'async') {
        expect(firstOk).toEqual({ reference: ok.reference, status: 'pending', message: 'Pending' });
        expect(firstDeclined.status).toBe('pending');
      } else {
        expect(firstOk).toMatchObject({ status: 'succeeded', amount: 500_000, fee: 1_000 });
        expect(firstDeclined).toMatchObject({ status: 'failed', reason: 'declined' });
      }
      const settledOk = await lookupUntil(
        () => g.lookupPayout(ok.reference),
        `${ok.reference} final`,
        final,
      );
      expect(settledOk).toMatchObject({ status: 'succeeded', amount: 500_000, fee: 1_000 });
      const settledDeclined = await lookupUntil(
        () => g.lookupPayout(declined.reference),
        `${declined.reference} final`,
        final,
      );
      // A failed payout says `failed` (documented words) or `cancelled` (extended), read as a
      // failure with reason `declined` or `canceled` (docs/sayswitch-wire.md, "Status words").
      expect(settledDeclined).toMatchObject({
        status: 'failed',
        reason: { documented: 'declined', extended: 'canceled' }[sb.unknowns.statusWords],
      });
      expect(sb.ledger().references[ok.reference]).toMatchObject({ moneyMoved: true });
    });
  });

  describe('a resubmitted reference', () => {
    it('resolves to the same transaction, whatever the duplicate answer, moving nothing twice', async () => {
      const g = gatewayOf(sb);
      const c = charge(20_000);
      const p = payout(30_000);
      if ((await g.chargeCard(c)).status === 'requires_action') {
        sb.authenticate(c.reference, 'complete');
      }
      await g.payout(p);
      const charged = await lookupUntil(() => g.verifyCharge(c.reference), 'charge final', final);
      const paid = await lookupUntil(() => g.lookupPayout(p.reference), 'payout final', final);
      const totals = sb.ledger().totals;

      const again: GatewayOutcome = await g.chargeCard(c);
      const paidAgain: GatewayOutcome = await g.payout(p);
      expect(again).toEqual(charged);
      expect(paidAgain).toEqual(paid);

      const ledger = sb.ledger();
      expect(ledger.totals).toEqual(totals);
      for (const r of [c.reference, p.reference]) {
        expect(ledger.activity[r]).toMatchObject({ submissions: 2, duplicates: 1, moves: 1 });
      }
    });

    it('a challenged charge resubmitted waits on the same challenge', async () => {
      const g = gatewayOf(sb3ds);
      const req = charge(21_000);
      const first = await g.chargeCard(req);
      expect(first).toMatchObject({
        status: 'requires_action',
        authorizationUrl: `${sb3ds.url}/__sandbox/3ds/${req.reference}`,
      });
      // Past the lag, verify shows the charge waiting on its payer.
      const waiting = await lookupUntil(() => g.verifyCharge(req.reference), 'charge visible');
      expect(waiting).toEqual({
        reference: req.reference,
        status: 'pending',
        message: 'Awaiting 3DS authentication',
      });
      const again = await g.chargeCard(req);
      // An echo answers the challenge again; every other shape is looked up (still pending).
      expect(again).toEqual(sb3ds.unknowns.duplicateReference === '200-echo' ? first : waiting);
      expect(sb3ds.ledger().activity[req.reference]).toMatchObject({ duplicates: 1, moves: 0 });

      // Then the payer abandons it, and the charge follows in the profile's words.
      expect(sb3ds.authenticate(req.reference, 'abandon').status).toBe(200);
      expect(sb3ds.ledger().references[req.reference]).toMatchObject({
        status: 'failed',
        moneyMoved: false,
      });
      if (sb3ds.unknowns.statusWords === 'documented') {
        // `failed`, with the gateway's words: a failure of authentication.
        const ended = await lookupUntil(() => g.verifyCharge(req.reference), 'abandoned', final);
        expect(ended).toEqual({
          reference: req.reference,
          status: 'failed',
          reason: 'authentication_required',
          message: 'Abandoned',
        });
        expect(await g.chargeCard(req)).toEqual(ended);
      } else {
        // `abandoned` is a word the adapter does not know: never failed on it, verify keeps
        // answering pending (the gateway's words in `message`) for a person to look at.
        const seen = await lookupUntil(
          () => g.verifyCharge(req.reference),
          'abandoned',
          (o) => o.status !== 'not_found' && 'message' in o && o.message === 'Abandoned',
        );
        const pending = { reference: req.reference, status: 'pending', message: 'Abandoned' };
        expect(seen).toEqual(pending);
        for (let i = 0; i < 3; i++) expect(await g.verifyCharge(req.reference)).toEqual(pending);
        // A resubmission (looked up, or echoed) reads the same word the same way.
        expect(await g.chargeCard(req)).toEqual(pending);
      }
      expect(sb3ds.ledger().activity[req.reference]).toMatchObject({
        duplicates: 2,
        moves: 0,
        authentication: 'abandoned',
      });
    });
  });

  describe('a duplicate whose lookup is blind (read-after-write lag)', () => {
    it('is outcome_unknown with the "reference exists" marker, never a plain not-found', async () => {
      const g = gatewayOf(blind);
      const c = charge(22_000);
      const p = payout(32_000);
      const firstCharge = await g.chargeCard(c);
      const firstPayout = await g.payout(p);
      // The lag: the gateway has both, its lookups do not show them.
      expect(await g.verifyCharge(c.reference)).toEqual({
        status: 'not_found',
        reference: c.reference,
      });
      expect((await g.lookupPayout(p.reference)).status).toBe('not_found');

      if (blind.unknowns.duplicateReference === '200-echo') {
        // The original answered again: no lookup needed, nothing unknown.
        expect(await g.chargeCard(c)).toEqual(firstCharge);
        expect(await g.payout(p)).toEqual(firstPayout);
      } else {
        for (const resubmit of [() => g.chargeCard(c), () => g.payout(p)]) {
          const err = await rejection(resubmit());
          expect(err).toBeInstanceOf(DuplicateReferenceUnresolvedError);
          expect(err).toBeInstanceOf(OutcomeUnknownError);
          expect(err).toMatchObject({
            kind: 'outcome_unknown',
            code: 'duplicate_reference_unresolved',
            referenceExists: true,
          });
          expect(referenceExistsAtGateway(err)).toBe(true);
        }
      }
      const ledger = blind.ledger();
      for (const r of [c.reference, p.reference]) {
        expect(ledger.activity[r]).toMatchObject({ submissions: 2, duplicates: 1 });
        expect(ledger.activity[r]!.moves).toBeLessThanOrEqual(1);
      }
    });
  });

  describe('not found', () => {
    it('verify and payout lookup of a reference never sent are not_found (404 or 200 shape)', async () => {
      const g = gatewayOf(sb);
      expect(await g.verifyCharge('api_pf_never_1')).toEqual({
        status: 'not_found',
        reference: 'api_pf_never_1',
      });
      expect(await g.lookupPayout('api_pf_never_2')).toEqual({
        status: 'not_found',
        reference: 'api_pf_never_2',
      });
      // A charge reference is no payout, and the other way round.
      const req = charge(23_000);
      if ((await g.chargeCard(req)).status === 'requires_action') {
        sb.authenticate(req.reference, 'complete');
      }
      await lookupUntil(() => g.verifyCharge(req.reference), 'charge visible');
      expect((await g.lookupPayout(req.reference)).status).toBe('not_found');
    });
  });

  describe('webhooks', () => {
    it('both shapes name our reference and read as the right kind, leading to a verify', async () => {
      const g = gatewayOf(sb);
      const c = charge(24_000);
      const p = payout(34_000);
      if ((await g.chargeCard(c)).status === 'requires_action') {
        sb.authenticate(c.reference, 'complete');
      }
      await g.payout(p);
      const events = () => receiver.received.map((w) => ({ w, e: parseWebhook(w.rawBody) }));
      const about = async (reference: string) =>
        until(() => events().find(({ e }) => 'reference' in e && e.reference === reference), {
          what: `a webhook about ${reference}`,
          timeoutMs: POLL_DEADLINE_MS,
        });
      const chargeHook = await about(c.reference);
      expect(chargeHook.e).toEqual({
        kind: 'transaction',
        reference: c.reference,
        status: 'succeeded',
      });
      if (sb.unknowns.collectionWebhook === 'documented') {
        expect(chargeHook.w.json).toMatchObject({ type: 'payment.success' });
      } else {
        expect(chargeHook.w.json).toMatchObject({ notify: 'transaction' });
      }
      const payoutHook = await about(p.reference);
      expect(payoutHook.e).toEqual({ kind: 'payout', reference: p.reference, status: 'succeeded' });
      // Every webhook the sandbox sent was read (none unsupported), and a verify confirms it.
      expect(events().filter(({ e }) => e.kind === 'unsupported')).toEqual([]);
      expect((await g.verifyCharge(c.reference)).status).toBe('succeeded');
    });
  });
});
