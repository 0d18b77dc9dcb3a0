/**
 * Misspelled variables: the environment holds every other tool's variables too, so an unknown
 * name is only reported when it starts like the product's own (SAYSWITCH_, WORKER_, …), and only
 * as a warning naming the closest variable the product reads: other tools may share a prefix
 * (REDIS_HOST, REDIS_PASSWORD), so refusing to start would be wrong. Names only: never a value.
 */

/**
 * Prefixes that only this product's variables use, as far as it can tell. Generic ones (NODE_,
 * API_, DATA_, LOG_, MAX_, HOST, PORT) are left out: they belong to too many other tools.
 * test/unit/config-warnings.test.ts checks which known variables each covers.
 */
export const PRODUCT_PREFIXES = [
  'SAYSWITCH_',
  'REDIS_',
  'QUEUE_',
  'WORKER_',
  'SUBMIT_',
  'SCHEDULER_',
  'RECONCILE_',
  'REQUIRES_ACTION_',
  'PAYOUT_',
  'ORPHAN_',
  'RESOLVE_',
  'MAX_UNSENT_',
  'DUNNING_',
  'BATCH_',
  'CATCH_UP_',
  'TRIAL_',
  'DATA_ENCRYPTION_',
  'API_READ_',
  'DASHBOARD_',
  'NOTIFY_',
  'WEBHOOK_',
  'SHUTDOWN_',
] as const;

/** An unknown variable that looks like one of ours. */
export interface ConfigWarning {
  variable: string;
  /** The known variable closest to it (edit distance). */
  closest: string;
  message: string;
}

/**
 * The set, non-empty variables of `env` that start with a product prefix (in any case) but are
 * not variables the product reads, each with the closest known name. Pure.
 */
export function unknownVariableWarnings(
  env: Record<string, string | undefined>,
  known: readonly string[],
): ConfigWarning[] {
  const knownSet = new Set(known);
  const warnings: ConfigWarning[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '' || knownSet.has(name)) continue;
    const upper = name.toUpperCase();
    if (!PRODUCT_PREFIXES.some((p) => upper.startsWith(p))) continue;
    const closest = closestName(upper, known);
    warnings.push({
      variable: name,
      closest,
      message: `${shownName(name)} is not a configuration variable and is ignored; did you mean ${closest}?`,
    });
  }
  return warnings.sort((a, b) => (a.variable < b.variable ? -1 : a.variable > b.variable ? 1 : 0));
}

/**
 * A variable name as a warning line shows it: anything but printable ASCII (a control character,
 * an escape sequence, a bidi override someone put in the environment) as `\uXXXX`, so the line
 * says what it says on any terminal.
 */
function shownName(name: string): string {
  return name.replace(
    /[^\x21-\x7e]/gu,
    (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`,
  );
}

/** The known name nearest to `name`; ties go to the one sharing the longer prefix, then A–Z. */
function closestName(name: string, known: readonly string[]): string {
  let best = '';
  let bestKey: [number, number, string] | undefined;
  for (const k of known) {
    const key: [number, number, string] = [editDistance(name, k), -commonPrefix(name, k), k];
    if (
      bestKey === undefined ||
      key[0] < bestKey[0] ||
      (key[0] === bestKey[0] && (key[1] < bestKey[1] || (key[1] === bestKey[1] && k < bestKey[2])))
    ) {
      best = k;
      bestKey = key;
    }
  }
  return best;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const prev = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row.push(d);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

const warned = new Set<string>();

/**
 * The default warning sink: one line on stderr per unknown variable, once per process (every CLI
 * command reads the configuration at its start, some more than once).
 */
export function warnOnStderr(w: ConfigWarning): void {
  if (warned.has(w.variable)) return;
  warned.add(w.variable);
  process.stderr.write(`warning: ${w.message}\n`);
}
