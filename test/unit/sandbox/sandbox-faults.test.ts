import { describe, expect, it } from 'vitest';
import {
  behaviourForAmount,
  chargeFeeMinor,
  decideBehaviour,
  injectedFault,
} from '../../../src/sandbox/outcomes.ts';
import { mulberry32, shuffleInPlace } from '../../../src/sandbox/prng.ts';
import type { Sandbox } from '../../../src/sandbox/index.ts';
import { callSandbox, chargeBody, startTestSandbox } from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const REFS = Array.from({ length: 40 }, (_, i) => `fault_${i}`);

describe('prng', () => {
  it('mulberry32 is reproducible and in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(mulberry32(43)()).not.toBe(xs[0]);
  });

  it('shuffleInPlace is a seeded permutation', () => {
    const items = Array.from({ length: 20 }, (_, i) => i);
    const one = shuffleInPlace([...items], mulberry32(1));
    expect(shuffleInPlace([...items], mulberry32(1))).toEqual(one);
    expect([...one].sort((x, y) => x - y)).toEqual(items);
    expect(one).not.toEqual(items);
  });
});

describe('outcome table', () => {
  it.each([
    [15051, 'decline', 'decline'],
    [15052, 'pending_then_success', 'pending_then_success'],
    [15053, 'pending_then_failed', 'pending_then_failed'],
    [15054, 'moved_then_500', 'moved_then_500'],
    [15055, 'moved_then_hang', 'moved_then_hang'],
    [15056, 'error_500', 'error_500'],
    [15057, 'rate_limited_once', 'rate_limited_once'],
    [15058, 'success', 'success_then_reversed'],
    [15000, 'success', 'success'],
    [15099, 'success', 'success'],
  ])('%i → charge %s, payout %s', (amount, charge, payout) => {
    expect(behaviourForAmount('charge', amount)).toBe(charge);
    expect(behaviourForAmount('payout', amount)).toBe(payout);
  });

  it('57 is rate limited only on the first try', () => {
    const noFault = { rate: 0, seed: 1 };
    expect(decideBehaviour('charge', 1057, 0, noFault, 'r')).toBe('rate_limited_once');
    expect(decideBehaviour('charge', 1057, 1, noFault, 'r')).toBe('success');
  });

  it.each([
    [1000, 12],
    [1, 0],
    [42, 1], // 0.504 rounds to 1
    [125, 2], // 1.5 rounds half up to 2
    [1_000_000_000_000_000, 12_000_000_000_000],
  ])('charge fee of %i is %i', (amount, fee) => {
    expect(chargeFeeMinor(amount)).toBe(fee);
  });
});

describe('injected faults', () => {
  it('never at rate 0, always at rate 1, spread evenly over 54/55/56/57', () => {
    const refs = Array.from({ length: 4000 }, (_, i) => `r_${i}`);
    expect(refs.some((r) => injectedFault(0, 1, r, 0) !== undefined)).toBe(false);
    const counts = new Map<string, number>();
    for (const r of refs) {
      const f = injectedFault(1, 1, r, 0);
      counts.set(String(f), (counts.get(String(f)) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([
      'error_500',
      'moved_then_500',
      'moved_then_hang',
      'rate_limited_once',
    ]);
    for (const n of counts.values()) expect(n).toBeGreaterThan(850);
  });

  it('hits about the configured share of submissions', () => {
    const refs = Array.from({ length: 5000 }, (_, i) => `share_${i}`);
    const hits = refs.filter((r) => injectedFault(0.2, 9, r, 0) !== undefined).length;
    expect(hits / refs.length).toBeGreaterThan(0.17);
    expect(hits / refs.length).toBeLessThan(0.23);
  });

  it('draws afresh on a retry of the same reference', () => {
    const refs = Array.from({ length: 200 }, (_, i) => `retry_${i}`);
    const first = refs.map((r) => injectedFault(0.5, 3, r, 0));
    const second = refs.map((r) => injectedFault(0.5, 3, r, 1));
    expect(second).not.toEqual(first);
  });
});

async function statusesOf(sb: Sandbox, concurrent: boolean): Promise<Record<string, number>> {
  const submit = async (r: string) =>
    [r, (await callSandbox(sb, CHARGE, { body: chargeBody(r, '10') })).status] as const;
  const pairs = concurrent
    ? await Promise.all(REFS.map(submit))
    : await REFS.reduce<Promise<(readonly [string, number])[]>>(
        async (acc, r) => [...(await acc), await submit(r)],
        Promise.resolve([]),
      );
  return Object.fromEntries(pairs);
}

describe('fault injection over HTTP', () => {
  it('is reproducible for a seed, whatever the request order; another seed differs', async () => {
    const opts = { faultRate: 0.4, hangMs: 20 };
    const runs: Record<string, number>[] = [];
    for (const [seed, concurrent] of [
      [7, false],
      [7, true],
      [8, false],
    ] as const) {
      const sb = await startTestSandbox({ ...opts, seed });
      try {
        const statuses = await statusesOf(sb, concurrent);
        // Whatever happened, the ledger holds exactly the references whose money moved.
        const refs = sb.ledger().references;
        for (const r of REFS) {
          if (statuses[r] === 200) expect(refs[r]).toMatchObject({ moneyMoved: true });
          if (statuses[r] === 429) expect(refs[r]).toBeUndefined();
        }
        runs.push(statuses);
      } finally {
        await sb.close();
      }
    }
    const [a, b, c] = runs;
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    const codes = new Set(Object.values(a!));
    expect(codes).toEqual(new Set([200, 429, 500]));
  });

  it('lets a faulted submission be retried until it lands', async () => {
    const sb = await startTestSandbox({ faultRate: 0.5, seed: 11, hangMs: 10 });
    try {
      for (const r of REFS.slice(0, 10)) {
        let status = 0;
        for (let attempt = 0; attempt < 30 && status !== 200 && status !== 409; attempt++) {
          status = (await callSandbox(sb, CHARGE, { body: chargeBody(r, '10') })).status;
        }
        expect([200, 409]).toContain(status);
        expect(sb.ledger().references[r]).toMatchObject({ status: 'success', moneyMoved: true });
      }
    } finally {
      await sb.close();
    }
  });
});
