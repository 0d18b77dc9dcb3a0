/**
 * What a crash or failover test checks at its end: where each acknowledged payment is (waiting
 * until all are final, or until the bound), and which intents the sandbox ledger (the truth of
 * what moved) saw move money under more than one reference.
 */
import type { IntentStore } from '../../src/kernel/ports.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { until } from './poll.ts';

export const FINAL_STATES: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'reversed',
  'needs_review',
]);

/**
 * The state of each of `keys` (`missing` when unreadable or absent) once every one is final, or
 * as they are after `timeoutMs`: the test then says which are not.
 */
export async function statesOnceFinal(
  store: Pick<IntentStore, 'get'>,
  keys: readonly string[],
  timeoutMs: number,
): Promise<Map<string, string>> {
  const states = async () => {
    const out = new Map<string, string>();
    for (const key of keys) {
      out.set(key, (await store.get(key).catch(() => undefined))?.state ?? 'missing');
    }
    return out;
  };
  return until(states, {
    done: (s) => [...s.values()].every((v) => FINAL_STATES.has(v)),
    what: 'every acknowledged payment final',
    timeoutMs,
    intervalMs: 500,
  }).catch(() => states());
}

/** How many references moved money, per intent key (a reference is `<key>_<attempt>`). */
export function referencesThatMovedMoney(sandbox: Sandbox): Map<string, number> {
  const perIntent = new Map<string, number>();
  for (const [ref, e] of Object.entries(sandbox.ledger().references)) {
    if (!e.moneyMoved) continue;
    const key = ref.replace(/_\d+$/, '');
    perIntent.set(key, (perIntent.get(key) ?? 0) + 1);
  }
  return perIntent;
}
