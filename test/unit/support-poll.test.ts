/** The suite's poll helper (test/support/poll.ts): what it resolves with, and what it says on timeout. */
import { describe, expect, it, vi } from 'vitest';
import { PollTimeoutError, until } from '../support/poll.ts';

/** A probe answering `values` in turn, then the last one forever. */
function answers<T>(...values: T[]): () => T {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] as T;
}

describe('until', () => {
  it('resolves with the first value other than undefined, null and false', async () => {
    expect(await until(answers<string | undefined>(undefined, undefined, 'x'))).toBe('x');
    expect(await until(answers<number | null | false>(null, false, 0))).toBe(0);
    expect(await until(answers(false, true))).toBe(true);
    expect(await until(() => Promise.resolve(''))).toBe('');
  });

  it('with `done`, resolves with the first value it accepts', async () => {
    const value = await until(answers({ n: 1 }, { n: 2 }, { n: 3 }), { done: (v) => v.n >= 2 });
    expect(value).toEqual({ n: 2 });
    expect(await until(answers<number | undefined>(undefined), { done: () => true })).toBe(
      undefined,
    );
  });

  it('counts a throw as "not yet" and keeps polling', async () => {
    let calls = 0;
    const value = await until(() => {
      calls++;
      if (calls < 3) throw new Error('not ready');
      return calls;
    });
    expect(value).toBe(3);
  });

  it('on timeout, says what was awaited and the last value seen', async () => {
    // On the fake clock: on the real one a process scheduled late passed the 30 ms deadline
    // after the first call, and the last value seen was the first.
    vi.useFakeTimers();
    let err: unknown;
    try {
      const polled = until(answers({ state: 'queued' }, { state: 'submitting' }), {
        done: (v) => v.state === 'succeeded',
        what: 'api_x succeeded',
        timeoutMs: 30,
        intervalMs: 5,
      }).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(30);
      err = await polled;
    } finally {
      vi.useRealTimers();
    }
    expect(err).toBeInstanceOf(PollTimeoutError);
    expect((err as Error).message).toMatch(
      /^timed out after 30 ms waiting for api_x succeeded; last value seen: \{ state: 'submitting' \}$/,
    );
  });

  it('on timeout, says the last error seen and keeps it as the cause', async () => {
    const boom = new Error('connection refused');
    const err = await until(
      () => {
        throw boom;
      },
      { what: () => 'the server up', timeoutMs: 0 },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      'timed out after 0 ms waiting for the server up; last error seen: Error: connection refused',
    );
    expect((err as Error).cause).toBe(boom);
  });

  it('calls the probe at least once, and names it when `what` is missing', async () => {
    let calls = 0;
    const err = await until(() => ++calls > 1, { timeoutMs: 0 }).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect((err as Error).message).toMatch(
      /^timed out after 0 ms waiting for \(\) => \+\+calls > 1 to hold; last value seen: false$/,
    );
  });
});
