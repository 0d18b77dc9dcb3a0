/**
 * The test suite's one poll helper. Poll only what offers no event to wait on (a promise, a
 * receiver's `waitFor`, a job reaching a final state); never sleep a fixed time instead, and
 * never assert on how long something took.
 */
import { inspect } from 'node:util';

export interface UntilOptions {
  /**
   * What is awaited, for the timeout message ("api_x final"). A function is called only on
   * timeout, to describe state worth showing then (a process's output, say).
   */
  what?: string | (() => string);
  /**
   * Default 15 000. Only a wait that fails ever reaches it: CI runs on two cores at a load of 10
   * and more, where 5 s of wall clock bought a process about one second of CPU, and waits for a
   * worker, a settlement or a redelivery ran out with nothing wrong.
   */
  timeoutMs?: number;
  /** Pause between two calls. Default 20. */
  intervalMs?: number;
}

/** How long `until` (and a webhook receiver's `waitFor`) waits by default: see `timeoutMs`. */
export const DEFAULT_UNTIL_TIMEOUT_MS = 15_000;

/** What `until` resolves with when no `done` predicate is given. */
export type Polled<T> = Exclude<T, undefined | null | false>;

/** Thrown on timeout; `cause` is the last error `fn` threw, when the last call threw. */
export class PollTimeoutError extends Error {
  override name = 'PollTimeoutError';
}

const show = (v: unknown): string => {
  const text = inspect(v, { depth: 4, breakLength: Infinity, maxArrayLength: 20 });
  return text.length > 2_000 ? `${text.slice(0, 2_000)}…` : text;
};

/**
 * Calls `fn` until it returns what is awaited and resolves with that value: with `done`, a value
 * `done` accepts; without, any value but `undefined`, `null` and `false` (so a predicate returning
 * a boolean works as is). A throw counts as "not yet": polling goes on, and the timeout error
 * names the last value or error seen. `fn` runs at least once, the last time at or after the
 * deadline.
 */
export function until<T>(
  fn: () => T | Promise<T>,
  opts: UntilOptions & { done: (value: T) => boolean },
): Promise<T>;
export function until<T>(fn: () => T | Promise<T>, opts?: UntilOptions): Promise<Polled<T>>;
export async function until<T>(
  fn: () => T | Promise<T>,
  opts: UntilOptions & { done?: (value: T) => boolean } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_UNTIL_TIMEOUT_MS;
  const intervalMs = opts.intervalMs ?? 20;
  const done = opts.done ?? ((v: T) => v !== undefined && v !== null && (v as unknown) !== false);
  const deadline = Date.now() + timeoutMs;
  let last: { value: T } | { error: unknown };
  for (;;) {
    try {
      const value = await fn();
      if (done(value)) return value;
      last = { value };
    } catch (error) {
      last = { error };
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
  const what =
    typeof opts.what === 'function' ? opts.what() : (opts.what ?? `${String(fn)} to hold`);
  if ('error' in last) {
    const { error } = last;
    const message = error instanceof Error ? `${error.name}: ${error.message}` : show(error);
    throw new PollTimeoutError(
      `timed out after ${timeoutMs} ms waiting for ${what}; last error seen: ${message}`,
      { cause: error },
    );
  }
  throw new PollTimeoutError(
    `timed out after ${timeoutMs} ms waiting for ${what}; last value seen: ${show(last.value)}`,
  );
}
