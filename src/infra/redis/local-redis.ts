/**
 * Finding a Redis for `billing demo`: REDIS_URL when set, else the local 127.0.0.1:6379 when it
 * answers, else a throwaway `redis-server` started on a free port in a temp directory (no
 * persistence, noeviction), stopped when the demo ends.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LocalRedis {
  url: string;
  source: 'REDIS_URL' | 'local' | 'spawned';
  stop(): Promise<void>;
}

/** True when something answers PING at host:port within `timeoutMs`. */
export function answersPing(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class NoRedisError extends Error {
  constructor(detail: string) {
    super(
      `No Redis reachable and none could be started (${detail}). Start one ` +
        '(e.g. `redis-server --daemonize yes`), install it (`apt-get install redis-server`), ' +
        'or set REDIS_URL=redis://host:6379.',
    );
    this.name = 'NoRedisError';
  }
}

export interface FindRedisOptions {
  /** The local port tried before starting a server. Default 6379. */
  localPort?: number;
  /** The server binary (looked up on PATH). Default `redis-server`. */
  redisServer?: string;
}

/** Resolves the demo's Redis, starting a throwaway server when nothing else is available. */
export async function findOrStartRedis(
  redisUrl: string | undefined,
  opts: FindRedisOptions = {},
): Promise<LocalRedis> {
  const noop = async () => {};
  const localPort = opts.localPort ?? 6379;
  if (redisUrl) return { url: redisUrl, source: 'REDIS_URL', stop: noop };
  if (await answersPing('127.0.0.1', localPort))
    return { url: `redis://127.0.0.1:${localPort}`, source: 'local', stop: noop };

  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'billing-demo-redis-'));
  const proc = spawn(
    opts.redisServer ?? 'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: 'ignore' },
  );
  const spawnError = new Promise<Error>((resolve) => proc.once('error', resolve));
  const deadline = Date.now() + 5_000;
  for (;;) {
    const failed = await Promise.race([
      spawnError,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)),
    ]);
    if (failed) {
      rmSync(dir, { recursive: true, force: true });
      throw new NoRedisError(
        `redis-server could not be started: ${(failed as NodeJS.ErrnoException).code ?? failed.message}`,
      );
    }
    if (await answersPing('127.0.0.1', port)) break;
    if (Date.now() > deadline || proc.exitCode !== null) {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new NoRedisError('redis-server did not answer within 5 s');
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    source: 'spawned',
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
