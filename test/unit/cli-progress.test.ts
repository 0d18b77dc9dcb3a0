/**
 * The `--wait` progress line (src/cli/progress.ts): durations that never read `2m60s`, an ETA
 * that is `--` until a rate is known (never `0s`, `NaN` or `NFs`), counts and money that fit the
 * terminal; and the role heartbeat's verdicts (src/cli/health-file.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BatchStatus } from '../../src/batches/status.ts';
import { heartbeatProblems, type Heartbeat } from '../../src/cli/health-file.ts';
import {
  EtaEstimator,
  formatDuration,
  formatEta,
  plainProgressLine,
  progressLine,
} from '../../src/cli/progress.ts';

const money = (minor: number) => ({
  amount: minor % 100 === 0 ? String(minor / 100) : (minor / 100).toFixed(2),
  amountMinor: minor,
});

function status(over: Partial<BatchStatus> & { succeeded?: number; failed?: number } = {}) {
  const succeeded = over.succeeded ?? 620;
  const failed = over.failed ?? 160;
  const zero = money(0);
  const s: BatchStatus = {
    id: 'payroll-march',
    type: 'payout',
    state: 'queued',
    source: 'payroll.csv',
    rows: 1_500,
    valid: 1_500,
    invalid: 0,
    counts: {
      in_progress: 1_500 - succeeded - failed,
      pending: 0,
      requires_action: 0,
      succeeded,
      failed,
      reversed: 0,
      needs_review: 0,
    },
    final: succeeded + failed,
    totals: {
      NGN: {
        rows: 1_500,
        ...money(150_000_000_00),
        byState: {
          pending: zero,
          requires_action: zero,
          succeeded: money(succeeded * 100_000_00),
          failed: money(failed * 50_000_00 + 51),
          reversed: zero,
          needs_review: zero,
        },
      },
    },
    createdAt: '2025-03-01T00:00:00.000Z',
    ...over,
  };
  return s;
}

describe('formatDuration / formatEta', () => {
  it.each([
    [0, '0s'],
    [59.4, '59s'],
    [59.6, '1m00s'],
    [179.6, '3m00s'],
    [125, '2m05s'],
    [3599.5, '1h00m'],
    [3_725, '1h02m'],
  ])('%s s reads %s', (sec, text) => {
    expect(formatDuration(sec)).toBe(text);
  });

  it('never shows a unit at 60, NaN or Infinity', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 400_000, noNaN: true }), (sec) => {
        const text = formatEta(sec);
        expect(text).toMatch(/^ETA (\d+s|\d+m[0-5]\ds|\d+h[0-5]\dm|>99h)$/);
      }),
    );
    for (const v of [undefined, Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      expect(formatEta(v)).toBe('ETA --');
    }
  });
});

describe('EtaEstimator', () => {
  it('is unknown until a rate is measured, and while nothing moves', () => {
    const eta = new EtaEstimator(30_000);
    expect(eta.secondsLeft(100)).toBeUndefined();
    eta.add(0, 0);
    expect(eta.secondsLeft(100)).toBeUndefined();
    eta.add(500, 0);
    expect(eta.secondsLeft(100)).toBeUndefined();
    eta.add(10_000, 0);
    expect(eta.secondsLeft(100)).toBeUndefined();
  });

  it('divides what is left by the rate over the window', () => {
    const eta = new EtaEstimator(30_000);
    eta.add(0, 0);
    eta.add(10_000, 50); // 5 rows a second
    expect(eta.secondsLeft(100)).toBeCloseTo(10);
    // A stall longer than the window: the old progress no longer counts.
    eta.add(45_000, 50);
    eta.add(50_000, 50);
    expect(eta.secondsLeft(100)).toBeUndefined();
    expect(eta.secondsLeft(50)).toBe(0);
  });
});

describe('the progress line', () => {
  it('shows a stored batch id with control characters escaped, still within the width', () => {
    // Written to the terminal as it is (not through Output): an ESC or a line break in a batch
    // stored before ids were checked must not reach it.
    const s = { ...status(), id: 'b\u001b[8m\nforged\u009b2J' };
    for (const width of [200, 100, 60]) {
      const line = progressLine(s, 65, width);
      expect(line).not.toMatch(/\p{Cc}/u);
      expect(line.length).toBeLessThanOrEqual(width - 1);
    }
    expect(progressLine(s, 65, 200)).toContain('batch b\\x1b[8m\\nforged\\u009b2J ');
  });

  it('shows the bar, counts, money and rows in flight', () => {
    const line = progressLine(status(), 65, 200);
    expect(line).toBe(
      'batch payroll-march [██████████░░░░░░░░░░] 52% 780/1,500 final · ' +
        'succeeded 620 (NGN 62,000,000) · failed 160 (NGN 8,000,000.51) · in flight 720 · ETA 1m05s',
    );
  });

  it('fits the terminal: money goes first, then the bar; never wider than the width - 1', () => {
    const s = status();
    expect(progressLine(s, 65, 120)).toBe(
      'batch payroll-march [██████████░░░░░░░░░░] 52% 780/1,500 final · succeeded 620 · failed 160 · in flight 720 · ETA 1m05s',
    );
    expect(progressLine(s, 65, 100)).toBe(
      'batch payroll-march 52% 780/1,500 final · succeeded 620 · failed 160 · in flight 720 · ETA 1m05s',
    );
    for (const width of [20, 40, 60, 80, 100, 160]) {
      expect(progressLine(s, undefined, width).length).toBeLessThanOrEqual(width - 1);
    }
  });

  it('reads done when every row is final, and lists reversed and review rows', () => {
    const s = status({ succeeded: 1_400, failed: 100 });
    s.counts.reversed = 2;
    s.counts.needs_review = 1;
    const line = progressLine(s, undefined, 300);
    expect(line).toContain('100% 1,500/1,500 final');
    expect(line).toContain('reversed 2 · needs review 1 · done');
    expect(line).not.toContain('in flight');
  });

  it('the plain line keeps its leading words (scripts grep them) and adds the counts', () => {
    expect(plainProgressLine(status())).toBe(
      'batch payroll-march: 780/1500 final (queued) · succeeded 620 (NGN 62,000,000) · ' +
        'failed 160 (NGN 8,000,000.51) · in flight 720',
    );
  });
});

describe('heartbeatProblems', () => {
  const beat: Heartbeat = {
    pid: 42,
    roles: ['worker'],
    startedAt: '2025-01-01T00:00:00.000Z',
    at: '2025-01-01T00:01:00.000Z',
    redis: 'up',
    workers: [{ queue: 'payouts', running: true }],
  };
  const now = Date.parse(beat.at) + 5_000;
  const judge = (b: Heartbeat, nowMs = now, alive = true) =>
    heartbeatProblems(b, { nowMs, maxAgeMs: 30_000, alive: () => alive });

  it('healthy: fresh, alive, Redis up, workers running', () => {
    expect(judge(beat)).toEqual([]);
  });

  it.each([
    ['a stale heartbeat', judge(beat, now + 60_000), /s old/],
    ['a dead process', judge(beat, now, false), /process 42 is not running/],
    ['Redis down', judge({ ...beat, redis: 'redis_unavailable' }), /Redis: redis_unavailable/],
    [
      'a stopped worker',
      judge({ ...beat, workers: [{ queue: 'payouts', running: false }] }),
      /payouts worker is not running/,
    ],
    ['an API not listening', judge({ ...beat, http: { listening: false } }), /not listening/],
  ])('unhealthy: %s', (_label, problems, expected) => {
    expect(problems.join('; ')).toMatch(expected);
  });
});
