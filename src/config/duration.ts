/**
 * Durations in configuration: `500ms`, `30s`, `2m`, `1h`, `1d`, comma-separated for schedules.
 * A deliberately tiny grammar: configuration must fail loudly on anything unusual.
 */
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/** Parses one duration to milliseconds, or undefined when it is not one. */
export function parseDurationMs(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** Parses `30s,2m,10m` to milliseconds, or undefined when any element is not a duration. */
export function parseScheduleMs(text: string): number[] | undefined {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    const ms = parseDurationMs(p);
    if (ms === undefined) return undefined;
    out.push(ms);
  }
  return out;
}
