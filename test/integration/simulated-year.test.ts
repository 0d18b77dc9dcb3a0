/**
 * A simulated year of recurring billing: 2,000 subscriptions across zones and intervals (month-
 * end anchors, DST-gap wall times, daily to yearly), driven day by day by a manual clock through
 * 2025 against the sandbox, with declines mixed in: cards that always decline (amount …51,
 * canceled after dunning), cards that decline a renewal once and pay on the retry, pending-then-
 * paid charges (…52), charges whose money moves and whose answer is lost (…54: `unknown` until
 * the reconciler's verify finds them paid; billing is held meanwhile), and a five-day scheduler
 * outage in July.
 *
 * The oracle is independent of the code under test: period starts by luxon from each anchor.
 * Asserted: every subscription was charged successfully exactly once per period that started in
 * the year, never twice for one period (no attempt reference beyond the first for a charge that
 * moved money), the sandbox ledger totals match to the minor unit, and every hold on billing
 * (subscription.billing_held) was lifted (subscription.billing_resumed) by the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BillingInterval } from '../../src/subscriptions/calendar.ts';
import type { GatewayOutcome, PaymentGateway } from '../../src/kernel/ports.ts';
import type { Ledger } from '../../src/sandbox/index.ts';
import { createSubscription } from '../../src/subscriptions/record.ts';
import { amountMinor, type ChargeCurrency } from '../../src/kernel/money.ts';
import { track } from '../support/leak-check.ts';
import { startSubsHarness, type SubsHarness } from '../support/subscription-harness.ts';

const SUBS = Number(process.env.SIM_YEAR_SUBS ?? 2_000);
const START = Date.parse('2025-01-01T00:00:00Z');
const END = Date.parse('2026-01-01T00:00:00Z');
const DAY = 86_400_000;
const OUTAGE = { from: Date.parse('2025-07-10T00:00:00Z'), days: 5 };

const ZONES = [
  'Africa/Lagos',
  'America/New_York',
  'Europe/London',
  'Asia/Kolkata',
  'Australia/Sydney',
  'Pacific/Apia',
  'America/Los_Angeles',
  'Europe/Berlin',
  'Asia/Tokyo',
  'America/Sao_Paulo',
  'Australia/Lord_Howe',
  'Africa/Nairobi',
];
const CURRENCIES: ChargeCurrency[] = ['NGN', 'USD', 'GBP', 'EUR'];

interface Plan {
  id: string;
  zone: string;
  interval: BillingInterval;
  count: number;
  /** Local wall time of the anchor. */
  anchorLocal: DateTime;
  amount: number;
  currency: ChargeCurrency;
  kind: 'normal' | 'declines' | 'flaky';
}

/** Deterministic pseudo-random in [0, 1) from an integer. */
function rand(i: number, salt: number): number {
  let x = (i * 2654435761 + salt * 40503) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 2246822507) >>> 0;
  x ^= x >>> 13;
  return (x >>> 0) / 2 ** 32;
}

function planOf(i: number): Plan {
  const zone = ZONES[i % ZONES.length]!;
  const r = rand(i, 1);
  // Mix: mostly yearly and monthly, some quarterly, weekly and fortnightly, a few daily.
  const [interval, count]: [BillingInterval, number] =
    r < 0.25
      ? ['month', 1]
      : r < 0.3
        ? ['month', 2]
        : r < 0.42
          ? ['month', 3]
          : r < 0.445
            ? ['week', 1]
            : r < 0.47
              ? ['week', 2]
              : r < 0.4725
                ? ['day', 1]
                : ['year', 1];
  // Wall times include 02:30 (inside spring-forward gaps in New York, London, Berlin, Sydney).
  const times = [
    [9, 0],
    [2, 30],
    [0, 15],
    [23, 45],
    [12, 0],
  ] as const;
  const [hour, minute] = times[Math.floor(rand(i, 2) * times.length)]!;
  const day =
    interval === 'month'
      ? [28, 29, 30, 31, 1, 15][Math.floor(rand(i, 3) * 6)]!
      : 1 + Math.floor(rand(i, 3) * 28);
  // Yearly plans start anywhere in the year; the rest in January.
  const month = interval === 'year' ? 1 + Math.floor(rand(i, 4) * 12) : 1;
  const daysIn = DateTime.fromObject({ year: 2025, month }, { zone }).daysInMonth ?? 28;
  let anchorLocal = DateTime.fromObject(
    { year: 2025, month, day: Math.min(day, daysIn), hour, minute },
    { zone },
  );
  // Every anchor after the start of the simulation, so period 0 is billed by it.
  if (anchorLocal.toMillis() <= START) anchorLocal = anchorLocal.plus({ days: 2 });
  const k = rand(i, 5);
  const kind: Plan['kind'] = k < 0.05 ? 'declines' : k < 0.15 ? 'flaky' : 'normal';
  let cents = 100 * (5 + Math.floor(rand(i, 6) * 500)) + Math.floor(rand(i, 7) * 50);
  if (kind === 'declines') cents = Math.floor(cents / 100) * 100 + 51;
  else if (rand(i, 8) < 0.03)
    cents = Math.floor(cents / 100) * 100 + 52; // pending, then paid
  else if (rand(i, 8) < 0.06) cents = Math.floor(cents / 100) * 100 + 54; // paid, answer lost
  return {
    id: `y${String(i).padStart(4, '0')}`,
    zone,
    interval,
    count,
    anchorLocal,
    amount: cents,
    currency: CURRENCIES[Math.floor(rand(i, 9) * CURRENCIES.length)]!,
    kind,
  };
}

/** The oracle: period starts by luxon, from the anchor, `n` steps at once. */
function expectedPeriods(p: Plan, lastTick: number): number {
  const unit = { day: 'days', week: 'weeks', month: 'months', year: 'years' }[p.interval];
  let n = 0;
  while (p.anchorLocal.plus({ [unit]: n * p.count }).toMillis() <= lastTick) n++;
  return n;
}

/** Flaky cards decline the first attempt of one renewal in three; the retry is paid. */
function flakyDecline(reference: string): boolean {
  const m = /^sub_(y\d{4})_(\d{8})_1$/.exec(reference);
  if (!m) return false;
  const i = Number(m[1]!.slice(1));
  return planOf(i).kind === 'flaky' && Number(m[2]) % 3 === 0;
}

function withFlakyCards(real: PaymentGateway): PaymentGateway {
  return {
    chargeCard: (req) =>
      flakyDecline(req.reference)
        ? Promise.resolve<GatewayOutcome>({
            status: 'failed',
            reason: 'declined',
            reference: req.reference,
          })
        : real.chargeCard(req),
    verifyCharge: (ref) => real.verifyCharge(ref),
    payout: (req) => real.payout(req),
    lookupPayout: (ref) => real.lookupPayout(ref),
    listBanks: (c) => real.listBanks(c),
    resolveAccountName: (q) => real.resolveAccountName(q),
    walletBalance: (c) => real.walletBalance(c),
    refund: (r) => real.refund(r),
    refundStatus: (ref) => real.refundStatus(ref),
    refundsOf: (ref) => real.refundsOf(ref),
  };
}

interface ChildSandbox {
  url: string;
  ledger(): Promise<Ledger>;
  close(): Promise<void>;
}

/**
 * The sandbox as `billing sandbox` runs it, in its own process: the simulation is CPU-bound,
 * and the sandbox on the second core halves the wall time of the year.
 */
async function startChildSandbox(): Promise<ChildSandbox> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['bin/billing.js', 'sandbox', '--port', '0', '--settle-ms', '50'],
    { env: { ...process.env, LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let open = true;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const handle: ChildSandbox = {
    url: await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`sandbox did not start: ${out}`)), 20_000);
      child.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
      child.once('exit', (code) => reject(new Error(`sandbox exited (${code}): ${out}`)));
    }),
    async ledger() {
      return (await (await fetch(`${handle.url}/__sandbox/ledger`)).json()) as Ledger;
    },
    async close() {
      if (!open) return;
      open = false;
      child.kill('SIGTERM');
      await exited;
    },
  };
  track({ kind: 'sandbox process', isOpen: () => open, close: () => handle.close() }, 'sandbox');
  return handle;
}

describe('a simulated year', () => {
  let sandbox: ChildSandbox;
  let h: SubsHarness;

  beforeAll(async () => {
    sandbox = await startChildSandbox();
    h = await startSubsHarness({
      sandboxUrl: sandbox.url,
      start: START,
      gateway: withFlakyCards,
      env: {
        WORKER_CONCURRENCY: '32',
        SAYSWITCH_RATE_LIMIT_PER_SEC: '10000',
        SAYSWITCH_TIMEOUT_MS: '10000',
        SUBMIT_LEASE: '30s',
        DUNNING_SCHEDULE: '10ms,20ms,30ms',
        DUNNING_EXHAUSTED: 'cancel',
      },
    });
  });

  afterAll(async () => {
    await h?.close();
    await sandbox?.close();
  });

  it(
    `bills ${SUBS} subscriptions exactly once per period through 2025`,
    { timeout: 600_000 },
    async () => {
      const plans = Array.from({ length: SUBS }, (_, i) => planOf(i));
      const subs = plans.map((p) =>
        createSubscription(
          {
            id: p.id,
            customerEmail: `${p.id}@example.com`,
            cardTokenSealed: h.app.sealer.seal(`enc_card_${p.id}`),
            amount: amountMinor(p.amount),
            currency: p.currency,
            schedule: {
              anchor: p.anchorLocal.toISO()!,
              timezone: p.zone,
              interval: p.interval,
              intervalCount: p.count,
            },
            metadata: { kind: p.kind },
          },
          START,
        ),
      );
      expect((await h.subs.createMany(subs)).every(Boolean)).toBe(true);

      let ticks = 0;
      for (let t = START; t < END; t += DAY) {
        if (t >= OUTAGE.from && t < OUTAGE.from + OUTAGE.days * DAY) continue;
        h.clock.set(t);
        await h.tick();
        ticks++;
        await h.settle(60_000);
      }
      // The last instant of the year: every period that started in 2025 is due by then.
      const lastTick = END - 1;
      h.clock.set(lastTick);
      await h.tick();
      await h.settle(60_000);
      expect(ticks).toBe(365 - OUTAGE.days);

      const ledger = await sandbox.ledger();
      const movedBySub = new Map<string, number>();
      const movedByKey = new Map<string, number>();
      for (const [ref, e] of Object.entries(ledger.references)) {
        if (!e.moneyMoved) continue;
        const key = ref.replace(/_\d+$/, '');
        movedByKey.set(key, (movedByKey.get(key) ?? 0) + 1);
        const id = key.split('_')[1]!;
        movedBySub.set(id, (movedBySub.get(id) ?? 0) + 1);
      }
      // Never two charges for one period.
      expect([...movedByKey.values()].filter((n) => n > 1)).toEqual([]);

      const expectedTotals: Record<string, { movedMinor: number; count: number }> = {};
      const wrong: string[] = [];
      let expectedCharges = 0;
      for (const p of plans) {
        const expected = p.kind === 'declines' ? 0 : expectedPeriods(p, lastTick);
        const got = movedBySub.get(p.id) ?? 0;
        if (got !== expected)
          wrong.push(
            `${p.id} (${p.interval}×${p.count} ${p.zone} ${p.anchorLocal.toISO()} ${p.kind}): ${got} ≠ ${expected}`,
          );
        expectedCharges += expected;
        const tot = (expectedTotals[p.currency] ??= { movedMinor: 0, count: 0 });
        tot.movedMinor += expected * p.amount;
        tot.count += expected;
      }
      expect(wrong).toEqual([]);
      expect(ledger.totals).toEqual(
        Object.fromEntries(Object.entries(expectedTotals).filter(([, t]) => t.count > 0)),
      );

      // Every subscription ends where its card leaves it; each success renewed it once.
      const stored = await h.subs.getMany(plans.map((p) => p.id));
      const statuses = new Map<string, number>();
      stored.forEach((s, i) => {
        const p = plans[i]!;
        const want = p.kind === 'declines' ? 'canceled' : 'active';
        if (s?.sub.status !== want) wrong.push(`${p.id}: ${s?.sub.status} ≠ ${want}`);
        statuses.set(
          s?.sub.status ?? 'missing',
          (statuses.get(s?.sub.status ?? 'missing') ?? 0) + 1,
        );
      });
      expect(wrong).toEqual([]);
      const events = await h.events();
      // Every hold was lifted: nothing is left unresolved, nothing holds billing.
      const held = new Set(
        events.filter((e) => e.type === 'subscription.billing_held').map((e) => e.data.reference),
      );
      const resumed = new Set(
        events
          .filter((e) => e.type === 'subscription.billing_resumed')
          .map((e) => e.data.reference),
      );
      expect(held.size).toBeGreaterThan(0);
      expect([...held].filter((r) => !resumed.has(r))).toEqual([]);
      expect(
        stored.filter((s) => (s?.sub.openCharges.length ?? 0) > 0).map((s) => s?.sub.id),
      ).toEqual([]);
      // A charge whose money moved kept its first reference: no retry was opened on top of it.
      const retriedAfterMoving = Object.entries(ledger.references)
        .filter(([ref, e]) => e.moneyMoved && !ref.endsWith('_1'))
        .map(([ref]) => ref.replace(/_\d+$/, '_1'))
        .filter((first) => ledger.references[first]?.moneyMoved);
      expect(retriedAfterMoving).toEqual([]);
      const renewed = events.filter((e) => e.type === 'subscription.renewed');
      expect(renewed).toHaveLength(expectedCharges);
      expect(new Set(renewed.map((e) => e.id)).size).toBe(expectedCharges);
      console.info(
        `simulated year: ${SUBS} subscriptions, ${ticks + 1} ticks, ${expectedCharges} renewals, ` +
          `${Object.keys(ledger.references).length} gateway references, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
      );
    },
  );
});
