/**
 * A child process of a test dies with the test process, also when that process dies without
 * running exit handlers (SIGKILL, OOM, a cancelled CI run): a tiny `sh` watchdog blocks reading a
 * pipe whose write end only this process holds, so the kernel closing that pipe is the signal.
 * Used for throwaway `redis-server`s (redis-server.ts), `billing` children (child.ts,
 * cli-run.ts) and the benches' sandbox and worker processes, which would otherwise keep running,
 * a worker retrying a Redis that is gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/**
 * `sh` blocks on `read` from a pipe only this process writes to; when this process dies the pipe
 * hits EOF and the watchdog SIGKILLs `pid`. The caller kills the watchdog when the process exits
 * normally ({@link dieWithThisProcess} does both).
 */
export function spawnWatchdog(pid: number): ChildProcess | undefined {
  try {
    const watchdog = spawn(
      'sh',
      ['-c', 'read _ignored; kill -9 "$1" 2>/dev/null', 'watchdog', String(pid)],
      {
        stdio: ['pipe', 'ignore', 'ignore'],
      },
    );
    watchdog.on('error', () => undefined);
    watchdog.stdin?.on('error', () => undefined);
    watchdog.unref();
    (watchdog.stdin as { unref?: () => void } | null)?.unref?.();
    return watchdog;
  } catch {
    return undefined;
  }
}

/** Watches `child`: SIGKILLed if this process dies first; the watchdog goes when `child` exits. */
export function dieWithThisProcess(child: ChildProcess): void {
  if (child.pid === undefined) return;
  const watchdog = spawnWatchdog(child.pid);
  child.once('exit', () => watchdog?.kill('SIGKILL'));
}
