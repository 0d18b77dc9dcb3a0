/**
 * A bench's child process ends with its parent. A parent that dies without stopping its children
 * (killed, or ended by SIGPIPE when its output is piped to `head`) would otherwise leave a sandbox
 * listening, or a worker polling Redis, until someone kills it by hand.
 */

/** How long `close` may take once the parent is gone (with nobody to answer it may hang). */
const CLOSE_BOUND_MS = 5_000;

/**
 * Calls `close` and exits once the parent is gone: a forked child (an IPC channel) on the
 * channel's `disconnect`, a spawned one when its stdin, which the parent must open as a pipe
 * (`stdio: ['pipe', …]`) and never write to, reaches its end. Exits after
 * {@link CLOSE_BOUND_MS} whether `close` settled or not.
 */
export function endWithParent(close: () => Promise<void>): void {
  let ending = false;
  const end = () => {
    if (ending) return;
    ending = true;
    setTimeout(() => process.exit(0), CLOSE_BOUND_MS).unref();
    void close()
      .catch(() => undefined)
      .finally(() => process.exit(0));
  };
  if (process.connected) {
    process.once('disconnect', end);
    return;
  }
  process.stdin.once('end', end);
  process.stdin.once('error', end);
  process.stdin.resume();
}
