/**
 * The progress of `billing batch submit --wait` (README, "CLI"): on a terminal one line redrawn in
 * place — bar, final/valid rows, succeeded and failed counts with their money, rows still in
 * flight, ETA — with the cursor hidden while it runs and shown again when it stops (also on
 * Ctrl-C); without a terminal, a plain line now and then.
 *
 * The ETA comes from the rate of rows becoming final over the last {@link ETA_WINDOW_MS}; until
 * that rate is known (or while nothing moves) it reads `ETA --`, never `0s`, `NaN` or `Infinity`.
 * Durations are rounded to whole seconds before being split, so `2m60s` cannot appear.
 */
import type { BatchStatus } from '../batches/status.ts';
import { printable } from './output.ts';

/** The window the ETA's rate is measured over. */
export const ETA_WINDOW_MS = 30_000;
/** Above this the ETA reads `>99h`. */
const ETA_CAP_SEC = 99 * 3600;

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const CLEAR_LINE = '\r\x1b[K';

/** `45s`, `2m05s`, `1h07m`: seconds rounded first, so a unit never reads 60. */
export function formatDuration(seconds: number): string {
  const s = Number.isFinite(seconds) ? Math.max(0, Math.round(seconds)) : 0;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** `ETA 1m05s`, or `ETA --` while unknown. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return 'ETA --';
  return seconds > ETA_CAP_SEC ? 'ETA >99h' : `ETA ${formatDuration(seconds)}`;
}

/** Rows left over the recent rate of rows becoming final. */
export class EtaEstimator {
  private samples: { at: number; final: number }[] = [];

  constructor(private readonly windowMs = ETA_WINDOW_MS) {}

  add(atMs: number, final: number): void {
    this.samples.push({ at: atMs, final });
    // Keep the window, and always the sample just before it (the rate spans the whole window).
    while (this.samples.length > 2 && (this.samples[1]?.at ?? atMs) <= atMs - this.windowMs) {
      this.samples.shift();
    }
  }

  /** Seconds until `total` rows are final; undefined until a rate is known or while none moves. */
  secondsLeft(total: number): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last === first) return undefined;
    const left = total - last.final;
    if (left <= 0) return 0;
    const dtSec = (last.at - first.at) / 1000;
    const done = last.final - first.final;
    if (dtSec < 1 || done <= 0) return undefined;
    return left / (done / dtSec);
  }
}

/** A major-unit amount (`1234567.50`) with grouped thousands (`1,234,567.50`). */
function grouped(amount: string): string {
  const [whole = '0', frac] = amount.split('.');
  const g = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac === undefined ? g : `${g}.${frac}`;
}

/** The money of a state per currency: `NGN 1,250,000 + GHS 800`; empty when none. */
function money(s: BatchStatus, state: 'succeeded' | 'failed'): string {
  return Object.entries(s.totals)
    .filter(([, t]) => t.byState[state].amountMinor > 0)
    .map(([currency, t]) => `${currency} ${grouped(t.byState[state].amount)}`)
    .join(' + ');
}

const count = (n: number) => n.toLocaleString('en-US');

/** The counts part: `succeeded 620 (NGN 1,234) · failed 160 (NGN 98,000) · in flight 720`. */
function countParts(s: BatchStatus, withMoney: boolean): string[] {
  const part = (label: string, n: number, m = '') =>
    `${label} ${count(n)}${withMoney && m !== '' ? ` (${m})` : ''}`;
  const inFlight = Math.max(0, s.valid - s.final);
  return [
    part('succeeded', s.counts.succeeded, money(s, 'succeeded')),
    part('failed', s.counts.failed, money(s, 'failed')),
    ...(s.counts.reversed > 0 ? [part('reversed', s.counts.reversed)] : []),
    ...(s.counts.needs_review > 0 ? [part('needs review', s.counts.needs_review)] : []),
    ...(inFlight > 0 ? [part('in flight', inFlight)] : []),
  ];
}

function bar(fraction: number, width: number): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}]`;
}

/**
 * The terminal line for a status, at most `width - 1` characters (a full-width line would wrap and
 * break the redraw). Money goes first when space is short, then the bar. It is written to the
 * stream as it is, not through Output: made {@link printable} here (a stored batch id or currency
 * is data), before it is measured.
 */
export function progressLine(s: BatchStatus, etaSec: number | undefined, width: number): string {
  const pct = s.valid === 0 ? 100 : Math.floor((s.final / s.valid) * 100);
  const done = `${pct}% ${count(s.final)}/${count(s.valid)} final`;
  const eta = s.final >= s.valid ? 'done' : formatEta(etaSec);
  const max = Math.max(2, width - 1);
  const variants = [
    [
      `batch ${s.id} ${bar(s.final / Math.max(1, s.valid), 20)} ${done}`,
      ...countParts(s, true),
      eta,
    ],
    [
      `batch ${s.id} ${bar(s.final / Math.max(1, s.valid), 20)} ${done}`,
      ...countParts(s, false),
      eta,
    ],
    [`batch ${s.id} ${done}`, ...countParts(s, false), eta],
    [`${done}`, ...countParts(s, false), eta],
  ].map((parts) => printable(parts.join(' · ')));
  const fits = variants.find((v) => v.length <= max);
  return fits ?? `${(variants[variants.length - 1] ?? '').slice(0, max - 1)}…`;
}

/** The plain progress line (no terminal): `batch b1: 12/20 final (queued) · succeeded 10 · failed 2`. */
export function plainProgressLine(s: BatchStatus): string {
  return [`batch ${s.id}: ${s.final}/${s.valid} final (${s.state})`, ...countParts(s, true)].join(
    ' · ',
  );
}

type TtyStream = NodeJS.WritableStream & { columns?: number };

/** The redrawn line on a terminal. `stop()` always shows the cursor again. */
export class ProgressBar {
  private drawn = false;
  private readonly eta = new EtaEstimator();

  constructor(
    private readonly stream: TtyStream,
    private readonly now: () => number = Date.now,
  ) {}

  update(s: BatchStatus): void {
    this.eta.add(this.now(), s.final);
    const line = progressLine(s, this.eta.secondsLeft(s.valid), this.stream.columns ?? 80);
    this.stream.write(`${this.drawn ? '' : HIDE_CURSOR}${CLEAR_LINE}${line}`);
    this.drawn = true;
  }

  stop(): void {
    if (!this.drawn) return;
    this.drawn = false;
    this.stream.write(`\n${SHOW_CURSOR}`);
  }
}
