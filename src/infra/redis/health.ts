/**
 * Whether Redis answers, from the connections' own events. One place decides what an outage is
 * and says so once: a structured log line when an episode starts (the first connection lost) and
 * one when it ends (every connection ready again), never a stack per reconnect attempt. BullMQ's
 * queues and workers hand their `error` events here too (they re-emit their connections' errors).
 *
 * Before the first connection is ready nothing is logged: whoever waits for Redis (a CLI command,
 * `billing start`) reports that failure itself, in one line naming the address (docs/operations.md,
 * "Redis outages").
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from '../logger.ts';

/** Redis could not be reached: the message names the address and what to do. */
export class RedisUnavailableError extends Error {
  readonly code = 'redis_unavailable';

  constructor(address: string, cause?: unknown) {
    const why = cause instanceof Error && cause.message ? ` (${cause.message})` : '';
    super(
      `cannot reach Redis at ${address}${why}: start Redis or point REDIS_URL at a running one`,
      { cause },
    );
    this.name = 'RedisUnavailableError';
  }
}

/** `redis://user:secret@host:6379/0` → `redis://host:6379/0`: an address safe to print and log. */
export function redisAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * True for errors that mean "Redis is not reachable now" rather than "Redis refused this command":
 * socket errors, ioredis giving up on a command while reconnecting, a closed connection, a server
 * that answers but cannot serve it now (a replica, loading).
 */
export function isRedisConnectionError(err: unknown): boolean {
  if (err instanceof RedisUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && CONNECTION_CODES.has(code)) return true;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  // A server that cannot take this command now, though it answers: a replica after a failover
  // behind one address (the connection reconnects, infra/redis/connection.ts; a blocking read
  // there is ended UNBLOCKED), one still loading its data, a replica cut off from its primary.
  // Nothing of the command ran.
  if (
    err.name === 'ReplyError' &&
    /^(READONLY|UNBLOCKED|LOADING|MASTERDOWN|CLUSTERDOWN) /.test(err.message)
  )
    return true;
  if (isSlotMoving(err)) return true;
  // The cluster client spent its redirection budget (infra/redis/connection.ts) on a cluster that
  // is down or failing over; the last error says which (a closed connection, CLUSTERDOWN).
  if (err.message.startsWith('Too many Cluster redirections.')) return true;
  // `Command timed out`: a fail-fast connection's command got no answer (a Redis that hangs).
  return /Connection is closed|Stream isn't writeable|connect ETIMEDOUT|Reached the max retries per request|^Command timed out$/.test(
    err.message,
  );
}

/**
 * A Redis Cluster refused the command because its slot is being moved to another master (a
 * resharding, docs/operations.md "Resharding a cluster"): TRYAGAIN while a script's keys are split
 * between the two masters, MOVED/ASK redirections the cluster client follows until its budget is
 * spent. Redis ran none of it. It is answered like an unreachable Redis (a request 503, a job
 * retried), but it is no outage: the other groups are served meanwhile, and so are this group's
 * commands whose keys are together.
 */
export function isSlotMoving(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return /^(?:Too many Cluster redirections\. Last error: ReplyError: )?(?:TRYAGAIN|MOVED|ASK) /.test(
    err.message,
  );
}

/** Slot-move refusals are logged once per this many ms, with how many were not. */
export const SLOT_MOVING_LOG_EVERY_MS = 60_000;

/**
 * Why Redis refuses writes while it answers (and serves reads): it reached `maxmemory` (with
 * `noeviction`, the only policy this service runs on: an `OOM command not allowed` reply), or it
 * cannot save to disk (`stop-writes-on-bgsave-error`: a `MISCONF` reply). Nothing of the refused
 * command was written: a script is refused at its first write, never halfway.
 */
export type WriteRefusal = 'out_of_memory' | 'cannot_persist';

/** The refusal `err` is, if it is one. */
export function redisWriteRefusal(err: unknown): WriteRefusal | undefined {
  if (!(err instanceof Error) || err.name !== 'ReplyError') return undefined;
  if (err.message.startsWith('OOM ')) return 'out_of_memory';
  if (err.message.startsWith('MISCONF ')) return 'cannot_persist';
  return undefined;
}

/** Each refusal's code (API, readiness, CLI) and what an operator does, in the words every edge uses. */
export const WRITE_REFUSALS = {
  out_of_memory: {
    code: 'redis_out_of_memory',
    headline: 'REDIS OUT OF MEMORY',
    words:
      'Redis reached maxmemory and refuses writes (maxmemory-policy noeviction): free memory or ' +
      'raise maxmemory (docs/operations.md, "Redis is full")',
  },
  cannot_persist: {
    code: 'redis_cannot_persist',
    headline: 'REDIS CANNOT PERSIST',
    words:
      'Redis cannot save its snapshot to disk and refuses writes (stop-writes-on-bgsave-error): ' +
      'fix its disk (space, permissions: see its log); it takes writes again after a save ' +
      'succeeds (docs/operations.md, "Redis is full")',
  },
} as const satisfies Record<WriteRefusal, { code: string; headline: string; words: string }>;

/** The code a refusal is answered with: `redis_out_of_memory`, `redis_cannot_persist`. */
export type WriteRefusalCode = (typeof WRITE_REFUSALS)[WriteRefusal]['code'];

/** Write refusals are logged once per this many ms (per kind), with how many were not. */
export const WRITE_REFUSAL_LOG_EVERY_MS = 60_000;

type Status = 'connecting' | 'up' | 'down';

/** What {@link RedisHealth.watch} needs of an ioredis connection. */
interface WatchedConnection extends EventEmitter {
  status: string;
}

export class RedisHealth {
  /** Printable address (no credentials). */
  readonly address: string;
  private readonly conns = new Map<WatchedConnection, boolean>();
  private status: Status = 'connecting';
  private downSince = 0;
  private lastError: string | undefined;
  private suppressed = 0;
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<(up: boolean) => void>();
  private closed = false;
  /** Answers whether Redis serves commands again (see {@link recoverBy}). */
  private readonly refusals: Record<
    WriteRefusal,
    { loggedAt: number; unlogged: number; total: number }
  > = {
    out_of_memory: { loggedAt: -Infinity, unlogged: 0, total: 0 },
    cannot_persist: { loggedAt: -Infinity, unlogged: 0, total: 0 },
  };
  private readonly slotMoves = { loggedAt: -Infinity, unlogged: 0 };
  private probe: (() => Promise<boolean>) | undefined;
  private probeEveryMs = 1_000;
  private probeTimer: NodeJS.Timeout | undefined;

  /** `address` replaces the one derived from `url` (a cluster: its seed nodes). */
  constructor(
    url: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    address?: string,
  ) {
    this.address = address ?? redisAddress(url);
  }

  /**
   * How to notice the end of an outage that no connection event will announce. A command error
   * (e.g. a cluster client's "Too many Cluster redirections … Connection is closed" while a master
   * fails over) starts an outage while every connection stays `ready`: no `ready` event follows,
   * so without a probe the monitor would say "down" for good (and everything gated on it — the
   * platform checks, readiness — would wait forever). While an outage lasts and every connection
   * is ready, `probe` runs every `everyMs`; its first success ends the outage.
   */
  recoverBy(probe: () => Promise<boolean>, everyMs = 1_000): this {
    this.probe = probe;
    this.probeEveryMs = everyMs;
    return this;
  }

  /** Follows an ioredis connection: `ready` counts it up, `close`/`end` down. */
  watch(conn: WatchedConnection): this {
    this.conns.set(conn, conn.status === 'ready');
    conn.on('ready', () => {
      this.conns.set(conn, true);
      this.update();
    });
    const lost = () => {
      this.conns.set(conn, false);
      this.update();
    };
    conn.on('close', lost);
    conn.on('end', lost);
    conn.on('error', (err: Error) => this.onError(err));
    this.update();
    return this;
  }

  /**
   * An `error` event of a connection, queue or worker. Connection errors belong to the outage
   * episode (remembered, not logged); Redis out of memory is said once a minute (every worker's
   * every job meets it); anything else is logged as it is.
   */
  onError(err: Error, component?: string): void {
    if (isSlotMoving(err)) {
      this.slotMoving(err);
      return;
    }
    if (isRedisConnectionError(err)) {
      this.lastError = err.message;
      if (this.status === 'up') this.startOutage();
      else this.suppressed++;
      return;
    }
    const refusal = redisWriteRefusal(err);
    if (refusal) {
      this.writeRefused(refusal, err);
      return;
    }
    this.logger.error({ component, err: { name: err.name, message: err.message } }, 'redis error');
  }

  /**
   * Redis refused a write ({@link redisWriteRefusal}): one error line a minute at most per kind,
   * counting the refusals in between. Not an outage: reads still work, and what was refused is
   * retried by whoever sent it (a job, a sweep) or answered 503 (a request).
   */
  writeRefused(kind: WriteRefusal, err: Error): void {
    const r = this.refusals[kind];
    r.total++;
    this.foldedLine(
      r,
      WRITE_REFUSAL_LOG_EVERY_MS,
      'error',
      err,
      `${WRITE_REFUSALS[kind].headline}: ${WRITE_REFUSALS[kind].words}`,
    );
  }

  /**
   * A command refused while its slot moves ({@link isSlotMoving}): one warn line a minute at most,
   * counting those in between. Not an outage: whoever sent it retries it (a job, a sweep) or was
   * answered 503 (a request).
   */
  private slotMoving(err: Error): void {
    this.foldedLine(
      this.slotMoves,
      SLOT_MOVING_LOG_EVERY_MS,
      'warn',
      err,
      'REDIS CLUSTER SLOT MOVING: commands on a slot being moved to another master are refused ' +
        'until its keys are together again, and are retried (docs/operations.md, "Resharding a cluster")',
    );
  }

  /**
   * One line per `everyMs` at most for a kind of refusal (`fold` keeps when it was last said),
   * carrying how many of that kind were not said since the last (`refusedSinceLastLine`).
   */
  private foldedLine(
    fold: { loggedAt: number; unlogged: number },
    everyMs: number,
    level: 'error' | 'warn',
    err: Error,
    msg: string,
  ): void {
    const now = this.now();
    if (now - fold.loggedAt < everyMs) {
      fold.unlogged++;
      return;
    }
    this.logger[level](
      {
        address: this.address,
        err: { name: err.name, message: err.message },
        refusedSinceLastLine: fold.unlogged,
      },
      msg,
    );
    fold.loggedAt = now;
    fold.unlogged = 0;
  }

  isUp(): boolean {
    return this.status === 'up';
  }

  /** How many write refusals of `kind` this process was told of ({@link writeRefused}). */
  writeRefusals(kind: WriteRefusal): number {
    return this.refusals[kind].total;
  }

  /** Calls `fn` whenever Redis comes back (true) or is lost (false). */
  onChange(fn: (up: boolean) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * The connections are being closed on purpose: from now on losing them is no outage (no log
   * line, no listener called).
   */
  closing(): void {
    this.closed = true;
    clearTimeout(this.probeTimer);
  }

  /** Resolves once every connection is ready; rejects with {@link RedisUnavailableError} after `ms`. */
  async waitUntilUp(ms: number): Promise<void> {
    if (this.isUp()) return;
    let timer: NodeJS.Timeout | undefined;
    let wake: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        wake = resolve;
        this.waiters.add(resolve);
        timer = setTimeout(
          () => reject(new RedisUnavailableError(this.address, this.errorCause())),
          ms,
        );
      });
    } finally {
      clearTimeout(timer);
      if (wake) this.waiters.delete(wake);
    }
  }

  /** The error to report for the current outage. */
  errorCause(): Error | undefined {
    return this.lastError === undefined ? undefined : new Error(this.lastError);
  }

  private update(): void {
    const allUp = this.allReady();
    if (allUp && this.status !== 'up') {
      this.recovered();
    } else if (!allUp && this.status === 'up') {
      this.startOutage();
    }
  }

  private allReady(): boolean {
    return this.conns.size > 0 && [...this.conns.values()].every(Boolean);
  }

  private recovered(): void {
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    const was = this.status;
    this.status = 'up';
    if (was === 'down') {
      this.logger.info(
        {
          redis: this.address,
          downForMs: this.now() - this.downSince,
          lastError: this.lastError,
          suppressedErrors: this.suppressed,
        },
        'redis reachable again',
      );
    }
    this.suppressed = 0;
    this.lastError = undefined;
    for (const w of this.waiters) w();
    for (const l of this.listeners) l(true);
  }

  /** While down with every connection ready, asks the probe until it succeeds. */
  private scheduleProbe(): void {
    const probe = this.probe;
    if (!probe || this.closed || this.probeTimer !== undefined) return;
    this.probeTimer = setTimeout(() => {
      // A lost connection ends the outage by its own `ready` event: no probe until then.
      void (this.allReady() ? probe() : Promise.resolve(false))
        .catch(() => false)
        .then((ok) => {
          this.probeTimer = undefined;
          if (this.closed || this.status !== 'down') return;
          if (ok && this.allReady()) this.recovered();
          else this.scheduleProbe();
        });
    }, this.probeEveryMs);
    this.probeTimer.unref();
  }

  private startOutage(): void {
    if (this.closed) {
      this.status = 'down';
      return;
    }
    this.status = 'down';
    this.downSince = this.now();
    this.suppressed = 0;
    this.logger.error(
      { redis: this.address, err: this.lastError === undefined ? undefined : this.lastError },
      'redis unreachable: requests answer 503 and jobs wait until it is back',
    );
    for (const l of this.listeners) l(false);
    this.scheduleProbe();
  }
}
