/**
 * Leak check (vitest setup file of the integration project): every BullMQ Worker, Queue,
 * QueueEvents, FlowProducer, ioredis connection or spawned server a test registers with
 * {@link track} must be closed by the time the test's own `afterEach` hooks are done. An open one
 * fails that test with its label and where it was created, and is then force-closed so one leak
 * does not cascade into the next test's timeouts.
 *
 * Scope: a resource tracked while a test runs (in the test or a `beforeEach`) belongs to that test
 * and is checked in `afterEach`; one tracked outside a test (a `beforeAll`, module level) belongs
 * to the file and is checked in `afterAll`. Assumes tests within a file run serially (no
 * `test.concurrent`), as the integration project does.
 *
 * Ordering: vitest runs `afterEach`/`afterAll` hooks in reverse registration order
 * (`sequence.hooks: 'stack'`), and a setup file registers before the test file, so these checks
 * run after the test file's own cleanup.
 */
import { afterAll, afterEach, beforeEach } from 'vitest';
import { FlowProducer, Queue, QueueEvents, Worker } from 'bullmq';

/** The shape of an ioredis `Redis`/`Cluster` that the check relies on. */
interface RedisLike {
  status: string;
  disconnect(): void;
  quit(): Promise<unknown>;
  once(event: 'end', listener: () => void): unknown;
  off(event: 'end', listener: () => void): unknown;
}

/** Anything else with an explicit open state, e.g. a spawned redis-server handle. */
export interface Closeable {
  /** Named in leak reports; defaults to the class name. */
  readonly kind?: string;
  isOpen(): boolean;
  close(): Promise<void>;
}

/** What {@link track} accepts. */
export type Trackable = Worker | Queue | QueueEvents | FlowProducer | RedisLike | Closeable;

/** One resource found open when its scope ended. */
export interface LeakReport {
  label: string;
  /** `Worker`, `Queue`, `QueueEvents`, `FlowProducer`, `ioredis`, or the custom class name. */
  kind: string;
  /** What was wrong, e.g. `close() never called` or `status "ready"`. */
  state: string;
  /** First stack frame outside test/support when `track` was called. */
  createdAt: string | undefined;
}

/** `test`: tracked while a test ran; `suite`: tracked in `beforeAll` or at module level. */
export type LeakScope = 'test' | 'suite';

interface Entry {
  resource: Trackable;
  label: string;
  scope: LeakScope;
  createdAt: string | undefined;
}

type Probe =
  | { state: 'closed' }
  | { state: 'closing'; settled: Promise<unknown> }
  | { state: 'open'; detail: string };

/** How long a close that was started (but not awaited) may take before it counts as a leak. */
const SETTLE_TIMEOUT_MS = 5_000;
/** How long a graceful force-close may take before falling back to a hard disconnect. */
const FORCE_CLOSE_TIMEOUT_MS = 5_000;

type BullmqInstance = Worker | Queue | QueueEvents | FlowProducer;

function bullmqKind(resource: Trackable): string | undefined {
  if (resource instanceof Worker) return 'Worker';
  if (resource instanceof QueueEvents) return 'QueueEvents';
  if (resource instanceof Queue) return 'Queue';
  if (resource instanceof FlowProducer) return 'FlowProducer';
  return undefined;
}

function isRedisLike(resource: object): resource is RedisLike {
  const r = resource as Partial<RedisLike>;
  return (
    typeof r.status === 'string' &&
    typeof r.disconnect === 'function' &&
    typeof r.quit === 'function' &&
    typeof r.once === 'function'
  );
}

function isCloseable(resource: object): resource is Closeable {
  const r = resource as Partial<Closeable>;
  return typeof r.isOpen === 'function' && typeof r.close === 'function';
}

/** Kind name of a trackable, or undefined when the object is not something this check knows. */
export function kindOf(resource: object): string | undefined {
  const bull = bullmqKind(resource as Trackable);
  if (bull) return bull;
  if (isRedisLike(resource)) return 'ioredis';
  if (isCloseable(resource)) {
    if (resource.kind) return resource.kind;
    return resource.constructor.name === 'Object' ? 'resource' : resource.constructor.name;
  }
  return undefined;
}

function waitForEnd(redis: RedisLike): Promise<void> {
  if (redis.status === 'end') return Promise.resolve();
  return new Promise((resolve) => redis.once('end', resolve));
}

function probe(resource: Trackable): Probe {
  if (bullmqKind(resource)) {
    // BullMQ 6: `closing` (public) is set by the first close() and is the promise of it;
    // `closed` (protected) flips once that promise resolves.
    const bull = resource as BullmqInstance & { closed?: boolean };
    if (bull.closed === true) return { state: 'closed' };
    if (bull.closing !== undefined) return { state: 'closing', settled: bull.closing };
    return { state: 'open', detail: 'close() never called' };
  }
  if (isRedisLike(resource)) {
    if (resource.status === 'end') return { state: 'closed' };
    // quit()/disconnect() set ioredis' `manuallyClosing`; 'end' follows once the socket closes.
    if ((resource as RedisLike & { manuallyClosing?: boolean }).manuallyClosing === true) {
      return { state: 'closing', settled: waitForEnd(resource) };
    }
    return {
      state: 'open',
      detail: `status "${resource.status}" (quit()/disconnect() never called)`,
    };
  }
  if (isCloseable(resource) && resource.isOpen())
    return { state: 'open', detail: 'isOpen() is true' };
  return { state: 'closed' };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<'timeout' | T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Closes a resource regardless of its state, gracefully if that is quick, hard otherwise. */
async function forceClose(resource: Trackable): Promise<void> {
  if (bullmqKind(resource)) {
    const bull = resource as BullmqInstance;
    const closing = bull instanceof Worker ? bull.close(true) : bull.close();
    const outcome = await withTimeout(
      closing.then(
        () => 'done' as const,
        () => 'failed' as const,
      ),
      FORCE_CLOSE_TIMEOUT_MS,
    );
    if (outcome !== 'done') await bull.disconnect().catch(() => undefined);
    return;
  }
  if (isRedisLike(resource)) {
    if (resource.status === 'end') return;
    const ended = waitForEnd(resource);
    resource.disconnect();
    await withTimeout(ended, FORCE_CLOSE_TIMEOUT_MS);
    return;
  }
  if (isCloseable(resource)) {
    await withTimeout(
      resource.close().catch(() => undefined),
      FORCE_CLOSE_TIMEOUT_MS,
    );
  }
}

/** The caller of `track` (first frame outside this directory), to point at the leaking line. */
function callerFrame(): string | undefined {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const outside = frames.find(
    (f) => !/test[/\\]support[/\\]/.test(f) && /\.[cm]?[jt]s:\d+/.test(f),
  );
  return outside?.trim().replace(/^at\s+/, '');
}

/**
 * A registry of open resources. The setup hooks use the shared {@link leakTracker}; tests of the
 * check itself build their own so they can leak on purpose without failing.
 */
export class LeakTracker {
  private readonly entries: Entry[] = [];
  private inTest = false;

  /** Registers `resource` under `label`; returns it so calls can wrap a constructor. */
  track<T extends Trackable>(resource: T, label: string): T {
    if (kindOf(resource) === undefined) {
      throw new TypeError(
        `track(): ${label} is not a BullMQ class, an ioredis client or a Closeable`,
      );
    }
    if (!this.entries.some((e) => e.resource === resource)) {
      this.entries.push({
        resource,
        label,
        scope: this.inTest ? 'test' : 'suite',
        createdAt: callerFrame(),
      });
    }
    return resource;
  }

  /** Forgets a resource (its owner closes it some other way). */
  untrack(resource: Trackable): void {
    const index = this.entries.findIndex((e) => e.resource === resource);
    if (index >= 0) this.entries.splice(index, 1);
  }

  /** Marks the start of a test: resources tracked from now on are test-scoped. */
  enterTest(): void {
    this.inTest = true;
  }

  /** Marks the end of a test. */
  exitTest(): void {
    this.inTest = false;
  }

  /** Labels of everything currently tracked, for diagnostics. */
  tracked(scope?: LeakScope): string[] {
    return this.entries.filter((e) => scope === undefined || e.scope === scope).map((e) => e.label);
  }

  /**
   * Ends a scope (all scopes when omitted): waits briefly for closes already under way, reports
   * every resource still open, force-closes those, and forgets the scope's resources.
   */
  async release(scope?: LeakScope): Promise<LeakReport[]> {
    const mine = this.entries.filter((e) => scope === undefined || e.scope === scope);
    for (const entry of mine) this.untrack(entry.resource);

    const leaks: LeakReport[] = [];
    await Promise.all(
      mine.map(async (entry) => {
        const found = probe(entry.resource);
        if (found.state === 'closed') return;
        const kind = kindOf(entry.resource) ?? 'resource';
        const report = (state: string): void => {
          leaks.push({ label: entry.label, kind, state, createdAt: entry.createdAt });
        };
        if (found.state === 'closing') {
          const outcome = await withTimeout(
            found.settled.then(
              () => 'done' as const,
              () => 'done' as const,
            ),
            SETTLE_TIMEOUT_MS,
          );
          if (outcome === 'done') return;
          report(`close() still pending after ${SETTLE_TIMEOUT_MS} ms`);
        } else {
          report(found.detail);
        }
        await forceClose(entry.resource);
      }),
    );
    return leaks;
  }
}

/** Human-readable failure message for {@link LeakTracker.release} output. */
export function formatLeaks(leaks: readonly LeakReport[], where: string): string {
  const lines = leaks.map(
    (l) =>
      `  - ${l.kind} "${l.label}": ${l.state}${l.createdAt ? ` (tracked at ${l.createdAt})` : ''}`,
  );
  return `${leaks.length} resource(s) left open by ${where} (force-closed now):\n${lines.join('\n')}`;
}

/** The tracker the setup hooks check; shared by every module of this test file's graph. */
export const leakTracker = new LeakTracker();

/**
 * Registers a Worker, Queue, QueueEvents, FlowProducer, ioredis client or {@link Closeable} with
 * the leak check, and returns it: `const worker = track(new Worker(...), 'charges worker')`.
 */
export function track<T extends Trackable>(resource: T, label: string): T {
  return leakTracker.track(resource, label);
}

/**
 * A child process (spawnCli's, spawnBilling's) in the leak check, as `kind`: open until it exited;
 * closed by `signal` (SIGKILL by default) and waiting for its exit.
 */
export function trackChild<
  C extends {
    proc: { exitCode: number | null; signalCode: NodeJS.Signals | null };
    kill(signal?: NodeJS.Signals): void;
    exited: Promise<unknown>;
  },
>(child: C, kind: string, signal: NodeJS.Signals = 'SIGKILL'): C {
  track(
    {
      kind,
      isOpen: () => child.proc.exitCode === null && child.proc.signalCode === null,
      close: async () => {
        child.kill(signal);
        await child.exited;
      },
    },
    `${kind} child`,
  );
  return child;
}

/** Removes a resource from the leak check. */
export function untrack(resource: Trackable): void {
  leakTracker.untrack(resource);
}

// Registered only under vitest, so scripts (benchmarks) can use the Redis harness too.
if (process.env.VITEST !== undefined) {
  beforeEach(() => {
    leakTracker.enterTest();
  });

  afterEach(async (context) => {
    try {
      const leaks = await leakTracker.release('test');
      if (leaks.length > 0) throw new Error(formatLeaks(leaks, `test "${context.task.name}"`));
    } finally {
      leakTracker.exitTest();
    }
  });

  afterAll(async () => {
    const leaks = await leakTracker.release('suite');
    if (leaks.length > 0) throw new Error(formatLeaks(leaks, 'beforeAll or module-level code'));
  });
}
