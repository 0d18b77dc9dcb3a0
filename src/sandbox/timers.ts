/**
 * Every timer the sandbox starts (latency, held 55 responses, settlements, webhook backoff) goes
 * through one registry so that `close()` can cancel them all at once and return promptly.
 */
export class TimerRegistry {
  /** Live timers, each with what to do if it is cancelled before it fires. */
  private readonly timers = new Map<NodeJS.Timeout, (() => void) | undefined>();
  private closed = false;

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs `fn` after `ms` unless the registry is closed first. */
  after(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.set(t, undefined);
  }

  /** Resolves true after `ms`, or false as soon as the registry is closed. */
  wait(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve(true);
      }, ms);
      this.timers.set(t, () => resolve(false));
    });
  }

  /** Clears every pending timer; waiters resolve false. Later calls schedule nothing. */
  closeAll(): void {
    this.closed = true;
    for (const [t, onCancel] of this.timers) {
      clearTimeout(t);
      onCancel?.();
    }
    this.timers.clear();
  }
}
