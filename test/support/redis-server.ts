/**
 * Throwaway `redis-server` processes for tests: an isolated server on a free port with its own
 * temp dir, so durability tests can SIGKILL it, restart it on the same port and dir, and check
 * what survived — without touching the shared Redis on 6379.
 *
 * Every server is killed when this process exits, and a tiny `sh` watchdog (watchdog.ts) kills it
 * if this process dies without running exit handlers (SIGKILL, OOM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnWatchdog } from './watchdog.ts';

/** Options of {@link spawnRedisServer}. */
export interface SpawnRedisServerOptions {
  /** `--appendonly yes` with `--appendfsync always`, so an acknowledged write survives SIGKILL. */
  appendonly?: boolean;
  /** Working dir (AOF, RDB). Default: a fresh temp dir, removed by `close()` and at exit. */
  dir?: string;
  /** Port to listen on. Default: a free port picked by the OS. */
  port?: number;
  /** Default `noeviction`, what BullMQ requires; tests of the eviction check pass another. */
  maxmemoryPolicy?: string;
  /** Extra command-line directives, e.g. `['--rename-command', 'CONFIG', '']`. */
  extraArgs?: string[];
  /** How long to wait for "Ready to accept connections". Default 10 000 ms. */
  startTimeoutMs?: number;
}

/** A running (or stopped, restartable) `redis-server`. */
export interface RedisServerHandle {
  /** For leak reports (the handle can be passed to `track`). */
  readonly kind: 'redis-server';
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** PID of the current process, or undefined while stopped. */
  readonly pid: number | undefined;
  /** True while the server process is alive. */
  isOpen(): boolean;
  /**
   * Stops the server and waits for the process to exit. `SIGKILL` simulates a crash (no
   * shutdown, no final fsync); `SIGTERM` (default) is a clean shutdown. No-op when stopped.
   */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** Starts the server again on the same port and dir (stopping it cleanly first if running). */
  restart(): Promise<void>;
  /** Kills the server and removes its dir if this module created it. Idempotent. */
  close(): Promise<void>;
  /** The server's most recent log lines, for failure messages. */
  recentLog(): string;
}

const LOG_LINES_KEPT = 50;
const STOP_TIMEOUT_MS = 10_000;

interface LiveServer {
  child: ChildProcess;
  watchdog: ChildProcess | undefined;
}

/** Servers alive in this process; killed synchronously on exit. */
const live = new Set<LiveServer>();
/** Dirs this module created and has not removed yet. */
const ownedDirs = new Set<string>();

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const server of live) {
      server.child.kill('SIGKILL');
      server.watchdog?.kill('SIGKILL');
    }
    for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** A port the OS considers free right now (the server binds it moments later; retried on EADDRINUSE). */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the port of a probe server'));
      });
    });
  });
}

class AddressInUseError extends Error {}

/**
 * Spawns an isolated `redis-server` (temp dir, `--save ""`, `--maxmemory-policy noeviction`,
 * AOF with `--appendfsync always` when `appendonly`) and resolves once it accepts connections.
 */
export async function spawnRedisServer(
  options: SpawnRedisServerOptions = {},
): Promise<RedisServerHandle> {
  installExitHook();
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'billing-redis-'));
  if (ownsDir) ownedDirs.add(dir);

  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const log: string[] = [];
  let current: LiveServer | undefined;
  let closed = false;

  const args = (port: number): string[] => [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    options.appendonly === true ? 'yes' : 'no',
    ...(options.appendonly === true ? ['--appendfsync', 'always'] : []),
    '--maxmemory-policy',
    options.maxmemoryPolicy ?? 'noeviction',
    '--daemonize',
    'no',
    '--logfile',
    '',
    ...(options.extraArgs ?? []),
  ];

  const start = async (port: number): Promise<void> => {
    const child = spawn('redis-server', args(port), { stdio: ['ignore', 'pipe', 'pipe'] });
    const server: LiveServer = { child, watchdog: undefined };
    live.add(server);
    child.once('exit', () => {
      live.delete(server);
      if (current === server) current = undefined;
      server.watchdog?.kill('SIGKILL');
      server.watchdog = undefined;
    });
    if (child.pid !== undefined) server.watchdog = spawnWatchdog(child.pid);

    // Keep draining stdout for the server's whole life: a full pipe would block its logging.
    let pending = '';
    const onOutput = (chunk: Buffer): void => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      log.push(...lines);
      if (log.length > LOG_LINES_KEPT) log.splice(0, log.length - LOG_LINES_KEPT);
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    // Never keep the test process alive for a server it forgot; the exit hook kills it.
    child.unref();
    (child.stdout as { unref?: () => void } | null)?.unref?.();
    (child.stderr as { unref?: () => void } | null)?.unref?.();

    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          finish(new Error(`redis-server on port ${port} not ready after ${startTimeoutMs} ms`));
        }, startTimeoutMs);
        let startOutput = '';
        const onData = (chunk: Buffer): void => {
          startOutput += chunk.toString('utf8');
          if (startOutput.includes('Ready to accept connections')) finish();
        };
        const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
          const tail = log.slice(-10).join('\n');
          const Ctor = /Address already in use/i.test(tail) ? AddressInUseError : Error;
          finish(new Ctor(`redis-server exited during start (${signal ?? code}):\n${tail}`));
        };
        const onError = (err: Error): void => finish(err);
        function finish(err?: Error): void {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.off('exit', onExit);
          child.off('error', onError);
          if (err) reject(err);
          else resolve();
        }
        child.stdout?.on('data', onData);
        child.once('exit', onExit);
        child.once('error', onError);
      });
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    current = server;
  };

  let port = options.port ?? (await findFreePort());
  for (let attempt = 1; ; attempt++) {
    try {
      await start(port);
      break;
    } catch (err) {
      // Another process grabbed the probed port between probe and bind: pick another.
      if (err instanceof AddressInUseError && options.port === undefined && attempt < 5) {
        port = await findFreePort();
        continue;
      }
      if (ownsDir) removeDir(dir);
      throw err;
    }
  }

  const stop = async (signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM'): Promise<void> => {
    const server = current;
    current = undefined;
    if (!server || !isAlive(server.child)) return;
    const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
    server.child.kill(signal);
    const timer = setTimeout(() => server.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  return {
    kind: 'redis-server',
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return current?.child.pid;
    },
    isOpen: () => current !== undefined && isAlive(current.child),
    stop,
    async restart() {
      if (closed) throw new Error('restart() after close()');
      await stop('SIGTERM');
      await start(port);
    },
    async close() {
      closed = true;
      await stop('SIGKILL');
      if (ownsDir) removeDir(dir);
    },
    recentLog: () => log.join('\n'),
  };
}

function isAlive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  ownedDirs.delete(dir);
}
