/** The Prometheus text format as tests read it from `/metrics`. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough of it: no escapes inside label values). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of `name{kind}` in `registry`'s exposition (0 when the series is not there). */
export async function discrepancyCount(
  registry: { metrics(): Promise<string> },
  kind: string,
): Promise<number> {
  const samples = parseMetrics(await registry.metrics());
  return (
    samples.find((s) => s.name === 'billing_gateway_discrepancies_total' && s.labels.kind === kind)
      ?.value ?? 0
  );
}
