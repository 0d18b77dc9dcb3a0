/**
 * Batch bookkeeping: counts by state, money per currency, completion, and the results file.
 *
 * Counts are kept incrementally by the batch tracker, a consumer (group `batches`) of the
 * `<prefix>:events` stream: every payment event of a batch row moves that row between the batch's
 * counters in one Lua step (batch-lua.ts APPLY_EVENTS), O(1) per event, and the step that makes
 * the last row final also publishes `batch.completed` — once, because only the `queued →
 * completed` change publishes it. Recomputing from the intents instead would cost O(rows) per
 * status query and leave completion with nobody to notice it; the events already say exactly
 * what changed. The results file does read every intent, once, because it lists every row.
 *
 * The tracker runs with the worker role; any number of replicas share the group. Redelivered or
 * late events are harmless: a row remembers the stream id it was last counted at.
 */
import { PassThrough, type Writable } from 'node:stream';
import { ReplyError, type Redis } from 'ioredis';
import { z } from 'zod';
import type { Clock } from '../kernel/clock.ts';
import { formatMajor, type AmountMinor, type Currency } from '../kernel/money.ts';
import { intentStateSchema } from '../kernel/intent.ts';
import { storeKeys } from '../infra/redis/keys.ts';
import {
  defaultConsumerName,
  ensureGroup,
  startStreamConsumer,
  type StreamEntry,
} from '../infra/redis/stream-consumer.ts';
import {
  RedisBatchStore,
  TRACKED_STATES,
  type BatchRecord,
  type BatchRowEvent,
  type InvalidRow,
  type TrackedState,
} from './store/batch-store.ts';
import type { BatchDeps } from './ingest.ts';
import { writeResultsCsv, type ResultRow } from './results-csv.ts';

/** The consumer group the tracker reads `<prefix>:events` with. */
export const BATCH_GROUP = 'batches';

/** What the tracker needs of the app (`App` fits). */
export type TrackerDeps = Pick<BatchDeps, 'config' | 'redis' | 'clock' | 'logger'>;

/** Tracker knobs. */
export interface BatchTrackerOptions {
  /** Default: host, pid and a random tail. */
  consumer?: string;
  /** How long one XREADGROUP blocks. Default 2 000. */
  blockMs?: number;
  /** Entries per read. Default 500. */
  batchSize?: number;
  /** Another consumer's entry pending this long is claimed (its process died). Default 60 000. */
  claimIdleMs?: number;
  /** Wait after an error before reading again. Default 1 000. */
  retryDelayMs?: number;
}

/** A running tracker. */
export interface BatchTracker {
  readonly consumer: string;
  isOpen(): boolean;
  /** Interrupts a blocking read, lets an in-progress step finish, closes its connection. */
  stop(): Promise<void>;
}

const rowEventData = z.object({
  key: z.string().min(1),
  batchId: z.string().min(1),
  state: z.enum(TRACKED_STATES),
});

/** The batch-row event in a stream entry, if it is one. */
function rowEvent(entry: StreamEntry): BatchRowEvent | undefined {
  const [streamId, flat] = entry;
  if (!flat) return undefined;
  let type: string | undefined;
  let data: string | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i] === 'type') type = flat[i + 1];
    else if (flat[i] === 'data') data = flat[i + 1];
  }
  // Cheap filters first: most events of a busy stream are not batch rows.
  if (type === undefined || !type.startsWith('payment.') || data === undefined) return undefined;
  if (!data.includes('"batchId"')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  const d = rowEventData.safeParse(parsed);
  if (!d.success) return undefined;
  return { streamId, intentKey: d.data.key, batchId: d.data.batchId, state: d.data.state };
}

/** Creates the group (from the start of the stream, so no batch event is missed) if missing. */
export function ensureBatchGroup(redis: Redis, prefix: string): Promise<void> {
  return ensureGroup(redis, storeKeys(prefix).events(), BATCH_GROUP);
}

/**
 * Starts the batch tracker (worker role): counts batch-row payment events into their batches and
 * completes batches. Resolves once the group exists and the loop runs.
 */
export async function startBatchTracker(
  deps: TrackerDeps,
  opts: BatchTrackerOptions = {},
): Promise<BatchTracker> {
  const prefix = deps.config.redis.prefix;
  const key = storeKeys(prefix).events();
  const consumer = opts.consumer ?? defaultConsumerName();
  const log = deps.logger.child({ component: 'batch-tracker', consumer });
  const conn = deps.redis.duplicate();
  const batches = new RedisBatchStore(conn, prefix);

  const applyBatch = async (entries: StreamEntry[]) => {
    const events: BatchRowEvent[] = [];
    for (const entry of entries) {
      const e = rowEvent(entry);
      if (e) events.push(e);
    }
    const completed = await batches.applyEvents(
      BATCH_GROUP,
      events,
      entries.map(([id]) => id),
      deps.clock.now(),
    );
    for (const batchId of completed) log.info({ batchId }, 'batch completed');
  };

  /** Redis refused the script itself, as opposed to a lost connection. */
  const refused = (err: unknown): err is Error => err instanceof (ReplyError as ErrorConstructor);

  const apply = async (entries: StreamEntry[]): Promise<void> => {
    try {
      await applyBatch(entries);
    } catch (err) {
      if (!refused(err)) throw err;
      // Find the entry Redis refuses, so one bad entry does not hold back every batch behind it:
      // it is logged and acknowledged, the others are applied.
      const [only] = entries;
      if (entries.length > 1 || only === undefined) {
        for (const entry of entries) await apply([entry]);
        return;
      }
      const e = rowEvent(only);
      log.error(
        { batchId: e?.batchId, key: e?.intentKey, err: { message: err.message } },
        'batch event refused by Redis; skipped',
      );
      await conn.xack(key, BATCH_GROUP, only[0]);
    }
  };

  return startStreamConsumer({
    connection: conn,
    stream: key,
    group: BATCH_GROUP,
    consumer,
    logger: log,
    label: 'batch tracker',
    handle: apply,
    blockMs: opts.blockMs ?? 2_000,
    batchSize: opts.batchSize ?? 500,
    claimIdleMs: opts.claimIdleMs ?? 60_000,
    retryDelayMs: opts.retryDelayMs ?? 1_000,
  });
}

/** Money of one currency in a batch, in major units (`"1500.50"`) and minor units. */
export interface CurrencyStatus {
  /** Valid rows in this currency. */
  rows: number;
  amount: string;
  amountMinor: number;
  /** Money per tracked state (succeeded, failed, pending, reversed, needs_review). */
  byState: Record<TrackedState, { amount: string; amountMinor: number }>;
}

/** The status of a batch (`billing batch status`, `GET /batches/:id`). */
export interface BatchStatus {
  id: string;
  type: string;
  state: BatchRecord['state'];
  source: string;
  rows: number;
  valid: number;
  invalid: number;
  /**
   * Rows by state. `in_progress`: queued, being submitted, or awaiting reconciliation of an
   * unknown outcome (states that publish no event).
   */
  counts: Record<TrackedState | 'in_progress', number>;
  /** Rows in a state final for the batch (succeeded, failed, reversed, needs_review). */
  final: number;
  totals: Record<string, CurrencyStatus>;
  createdAt: string;
  ingestedAt?: string;
  finishedAt?: string;
}

function money(minor: number): { amount: string; amountMinor: number } {
  return { amount: formatMajor(minor as AmountMinor), amountMinor: minor };
}

/** The public view of a batch record. */
export function toBatchStatus(b: BatchRecord): BatchStatus {
  const tracked = TRACKED_STATES.reduce((sum, s) => sum + b.counts[s], 0);
  const totals: Record<string, CurrencyStatus> = {};
  const currencies = new Set<string>(Object.keys(b.totals));
  for (const perState of Object.values(b.amounts)) {
    for (const c of Object.keys(perState)) currencies.add(c);
  }
  for (const currency of [...currencies].sort()) {
    const input = b.totals[currency];
    totals[currency] = {
      rows: input?.rows ?? 0,
      ...money(input?.amount ?? 0),
      byState: Object.fromEntries(
        TRACKED_STATES.map((s) => [s, money(b.amounts[s]?.[currency] ?? 0)]),
      ) as CurrencyStatus['byState'],
    };
  }
  return {
    id: b.id,
    type: b.type,
    state: b.state,
    source: b.source,
    rows: b.rows,
    valid: b.valid,
    invalid: b.invalid,
    counts: { in_progress: Math.max(0, b.expected - tracked), ...b.counts },
    final: b.final,
    totals,
    createdAt: new Date(b.createdAt).toISOString(),
    ...(b.ingestedAt !== undefined ? { ingestedAt: new Date(b.ingestedAt).toISOString() } : {}),
    ...(b.finishedAt !== undefined ? { finishedAt: new Date(b.finishedAt).toISOString() } : {}),
  };
}

/** The batch's status, or undefined when there is no such batch. O(1): counters, not rows. */
export async function batchStatus(
  deps: Pick<BatchDeps, 'config' | 'redis'>,
  id: string,
): Promise<BatchStatus | undefined> {
  const batch = await new RedisBatchStore(deps.redis, deps.config.redis.prefix).get(id);
  return batch ? toBatchStatus(batch) : undefined;
}

/** Intent fields the results file needs, read with one HMGET per row. */
const RESULT_FIELDS = [
  'key',
  'line',
  'state',
  'amount',
  'currency',
  'gatewayReference',
  'fee',
  'reason',
  'message',
  'updatedAt',
  'meta',
] as const;

const PAGE = 1000;

/** Reads a batch's refused rows in line order, a page at a time. */
class InvalidCursor {
  private page: InvalidRow[] = [];
  private at = 0;
  private offset = 0;
  private exhausted: boolean;

  constructor(
    private readonly batches: RedisBatchStore,
    private readonly id: string,
    enabled: boolean,
  ) {
    this.exhausted = !enabled;
  }

  async peek(): Promise<InvalidRow | undefined> {
    if (this.at < this.page.length) return this.page[this.at];
    if (this.exhausted) return undefined;
    this.offset += this.page.length;
    this.page = await this.batches.invalidRows(this.id, this.offset, PAGE);
    this.at = 0;
    if (this.page.length < PAGE) this.exhausted = true;
    return this.page[0];
  }

  take(): void {
    this.at++;
  }
}

function invalidResult(row: InvalidRow): ResultRow {
  return { line: row.line, status: 'invalid', reason: row.message, meta: {} };
}

/** Rows of a batch in line order: its intents merged with its refused rows. */
async function* resultRows(
  deps: Pick<BatchDeps, 'config' | 'redis' | 'store' | 'logger'>,
  batches: RedisBatchStore,
  batch: BatchRecord,
): AsyncGenerator<ResultRow> {
  const intentHash = storeKeys(deps.config.redis.prefix).intent;
  const keyPrefix = `bat_${batch.id}_`;
  const invalid = new InvalidCursor(batches, batch.id, batch.skipInvalid);

  for (let offset = 0; ; offset += PAGE) {
    const keys = await deps.store.batchKeys(batch.id, offset, PAGE);
    if (keys.length === 0) break;
    const pipe = deps.redis.pipeline();
    for (const key of keys) pipe.hmget(intentHash(key), ...RESULT_FIELDS);
    const replies = (await pipe.exec()) ?? [];
    const rows: ResultRow[] = [];
    const selfRefCandidates: number[] = [];
    for (const [err, value] of replies) {
      if (err) throw err;
      const f = value as (string | null)[];
      const [key, line, state, amount, currency, gwRef, fee, reason, message, updatedAt, meta] = f;
      if (key === null || key === undefined || line === null || line === undefined) {
        deps.logger.warn({ batchId: batch.id }, 'batch index lists an intent that is gone');
        continue;
      }
      const suffix = key.startsWith(keyPrefix) ? key.slice(keyPrefix.length) : '';
      const lineNo = Number(line);
      if (suffix === line) selfRefCandidates.push(lineNo);
      const why = [reason, message].filter((s): s is string => s !== null && s !== undefined);
      rows.push({
        line: lineNo,
        // A suffix equal to the line is a row without a reference, unless marked (below).
        ...(suffix !== line ? { reference: suffix } : {}),
        intentKey: key,
        status: intentStateSchema.parse(state),
        amount: Number(amount) as AmountMinor,
        currency: (currency ?? '') as Currency,
        ...(gwRef !== null && gwRef !== undefined ? { gatewayReference: gwRef } : {}),
        ...(fee !== null && fee !== undefined ? { fee: Number(fee) as AmountMinor } : {}),
        ...(why.length > 0 ? { reason: why.join(': ') } : {}),
        ...(updatedAt !== null && updatedAt !== undefined
          ? { updatedAt: new Date(Number(updatedAt)) }
          : {}),
        meta:
          meta === null || meta === undefined
            ? {}
            : z.record(z.string(), z.string()).parse(JSON.parse(meta)),
      });
    }
    if (selfRefCandidates.length > 0) {
      const marked = await batches.referencedLines(batch.id, selfRefCandidates);
      const referenced = new Set(selfRefCandidates.filter((_, i) => marked[i] === true));
      for (const row of rows) {
        if (row.reference === undefined && referenced.has(row.line)) {
          row.reference = String(row.line);
        }
      }
    }
    for (const row of rows) {
      for (let inv = await invalid.peek(); inv && inv.line < row.line; inv = await invalid.peek()) {
        invalid.take();
        yield invalidResult(inv);
      }
      yield row;
    }
    if (keys.length < PAGE) break;
  }
  for (let inv = await invalid.peek(); inv; inv = await invalid.peek()) {
    invalid.take();
    yield invalidResult(inv);
  }
}

/**
 * Streams the results file of PRODUCT.md 6.3 into `out` (one row per input row, in input order,
 * refused rows included when the batch was submitted with skip-invalid) and ends `out`. Returns
 * false, writing nothing, when there is no such batch.
 */
export async function batchResults(
  deps: Pick<BatchDeps, 'config' | 'redis' | 'store' | 'logger'>,
  id: string,
  out: Writable,
): Promise<boolean> {
  const batches = new RedisBatchStore(deps.redis, deps.config.redis.prefix);
  const batch = await batches.get(id);
  if (!batch) return false;
  await writeResultsCsv(resultRows(deps, batches, batch), out, batch.metaKeys);
  return true;
}

/** A readable results file, for HTTP replies: errors destroy the stream. */
export function batchResultsStream(
  deps: Pick<BatchDeps, 'config' | 'redis' | 'store' | 'logger'>,
  id: string,
): PassThrough {
  const pass = new PassThrough();
  batchResults(deps, id, pass).catch((err: unknown) => {
    pass.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  return pass;
}

/** Reads a batch's status (e.g. {@link batchStatus} bound to deps). */
export type StatusPoller = (id: string) => Promise<BatchStatus | undefined>;

/** Waits for a batch to complete, calling `onProgress` with each status read. */
export async function waitForBatch(
  poll: StatusPoller,
  id: string,
  opts: {
    intervalMs?: number;
    onProgress?: (s: BatchStatus) => void;
    clock?: Pick<Clock, 'now'>;
    timeoutMs?: number;
  } = {},
): Promise<BatchStatus> {
  const intervalMs = opts.intervalMs ?? 500;
  const start = opts.clock?.now() ?? Date.now();
  for (;;) {
    const status = await poll(id);
    if (!status) throw new Error(`no batch ${id}`);
    opts.onProgress?.(status);
    if (status.state === 'completed') return status;
    if (
      opts.timeoutMs !== undefined &&
      (opts.clock?.now() ?? Date.now()) - start > opts.timeoutMs
    ) {
      throw new Error(`batch ${id} not completed within ${opts.timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
