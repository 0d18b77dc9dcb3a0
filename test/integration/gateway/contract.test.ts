/**
 * The adapter against the sandbox over real HTTP: one contract suite, run with payload encryption
 * off and on. Every sandbox outcome (51–58) for charges and payouts, with the sandbox ledger as
 * the truth of what money moved.
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
import type { ChargeRequest, PayoutRequest } from '../../../src/kernel/ports.ts';
import {
  SayswitchGateway,
  type SayswitchOptions,
} from '../../../src/infra/gateway/sayswitch/client.ts';
import type { PayloadCryptoConfig } from '../../../src/infra/gateway/sayswitch/crypto.ts';
import { startSandbox } from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';

const SECRET = 'sk_test_contract';
const SETTLE_MS = 200;
const POLL_DEADLINE_MS = 5_000;

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

  beforeAll(async () => {
    sandbox = await startSandbox({
      port: 0,
      secretKey: SECRET,
      ...(encryption
        ? { encryption: { key: encryption.key, iv: encryption.iv, encoding: encryption.encoding } }
        : {}),
      settleMs: SETTLE_MS,
      hangMs: 10_000,
      latencyMs: 0,
      faultRate: 0,
      seed: 7,
    });
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
      expect(entry(req.reference)).toMatchObject({ status: 'pending', moneyMoved: false });
      const settled = await until(() => g.verifyCharge(req.reference), {
        done: (o) => o.status !== 'pending',
        what: `${req.reference} settled (verifyCharge)`,
        timeoutMs: POLL_DEADLINE_MS,
      });
      expect(settled).toMatchObject({ status: 'succeeded', amount: 10_052 });
      expect(entry(req.reference)).toMatchObject({ status: 'success', moneyMoved: true });
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
      const err = await rejection(gateway({ timeoutMs: 300 }).chargeCard(req));
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

      const pending = charge(20_052);
      await g.chargeCard(pending);
      expect((await g.chargeCard(pending)).status).toBe('pending');
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
      const err = await rejection(gateway({ timeoutMs: 300 }).payout(req));
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
