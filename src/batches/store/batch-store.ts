/**
 * Batch records in Redis: one hash per batch (`<prefix>:batch:<id>`), one sorted set per batch
 * state (`<prefix>:idx:batch-state:<state>`, scored by creation time; its cardinality is the
 * per-state counter), one sorted set of every batch scored by creation time
 * (`<prefix>:idx:batch-created`, the unfiltered list; `billing batch reindex` builds it for
 * batches claimed before it existed), and per batch the rows refused by validation
 * (`<prefix>:batch:<id>:invalid`) and the lines whose reference equals their own line number
 * (`<prefix>:batch:<id>:reflines`, see {@link RedisBatchStore.markReferencedLines}). One registry
 * of row references per batch type (`<prefix>:batch-refs:<type>`, a hash: lower-cased reference →
 * `<batch id>:<line>` of the row that claimed it; never pruned, about 100 bytes per reference),
 * so a reference is paid by one batch only (see {@link RedisBatchStore.claimReferences}).
 *
 * The id is claimed atomically (create-if-absent), so two uploads of one file make one batch. The
 * claimer holds a lease on the ingest, renewed while it works; a submitter that finds an ingest
 * whose lease ran out takes it over and redoes it (intents and jobs are idempotent by key and id).
 * Every state change moves the batch between the state indexes in the same script. Rows of a batch
 * held for approval wait in `<prefix>:batch:<id>:held` (line → the row, card token sealed). The
 * lines a cancel counted are bits of `<prefix>:batch:<id>:canceled-lines`, so a count the Redis
 * client resends is not counted twice (ADD_CANCELED_ROW).
 *
 * About 550 lines: the one adapter of the BatchStore port (its scripts are in batch-lua.ts);
 * splitting it would split one hash layout over several files.
 */
import { ReplyError, type Redis } from 'ioredis';
import { z } from 'zod';
import {
  readableOrThrow,
  readJsonObject,
  unreadableInPlace,
  UnreadableRecordError,
} from '../../kernel/errors.ts';
import { INSTRUCTION_TYPES, SETTLED_STATES, type InstructionType } from '../../kernel/intent.ts';
import type { AmountMinor } from '../../kernel/money.ts';
import { storeKeys } from '../../infra/redis/keys.ts';
import { refusedRowEcho } from '../../input/instructions.ts';
import {
  BATCH_STATES,
  TRACKED_STATES,
  type ApplyEventsResult,
  type ApproveResult,
  type BatchIdPage,
  type BatchInit,
  type BatchListStore,
  type BatchOperationsStore,
  type BatchRecord,
  type BatchRowEvent,
  type BatchState,
  type BatchStore,
  type ClaimReferencesInput,
  type ClaimReferencesResult,
  type ClaimResult,
  type InvalidRow,
  type ReferenceHolder,
  type RefusedRow,
  type RefusedReference,
  type TrackedState,
} from '../ports.ts';
import {
  newResealCounts,
  readOrCount,
  resealOne,
  type BatchIntentRow,
  type Reseal,
  type ResealCounts,
} from '../../kernel/ports.ts';
import { nextCallId } from '../../infra/redis/call-id.ts';
import {
  ADD_CANCELED_ROW,
  APPLY_EVENTS,
  APPROVE_BATCH,
  CLAIM_BATCH,
  RESYNC_ROWS,
  CLAIM_REFERENCES,
  FINISH_INGEST,
  FINISH_RELEASE,
  MARK_CANCELED,
  REFUSE_ROWS,
  RENEW_INGEST,
  RESEAL_HELD_ROW,
  TAKE_OVER_INGEST,
} from './batch-lua.ts';
import { scanEach } from '../../infra/redis/scan.ts';
import { listBatchIds } from './batch-list.ts';

// The batch states and the tracked intent states are the port's (../ports.ts); re-exported for
// the adapter's own tests.
export { BATCH_STATES, TRACKED_STATES, type BatchState, type TrackedState };

/** States final for a batch: {@link SETTLED_STATES}; the type checks that each one is tracked. */
export const BATCH_FINAL_STATES: readonly TrackedState[] = SETTLED_STATES;

const EVENTS_MAX_LEN = '1000000';

/** Rows of a batch per RESYNC_ROWS call ({@link RedisBatchStore.resyncRunning}). */
const RESYNC_PAGE = 500;

const num = z.coerce.number().int();
const totalsSchema = z.record(
  z.string(),
  z.object({
    rows: z.number().int(),
    amount: z.number().transform((n) => n as AmountMinor),
  }),
);

/** The hash as stored (all strings) → a typed record. A corrupt hash fails loudly here. */
const hashSchema = z.object({
  id: z.string(),
  type: z.enum(INSTRUCTION_TYPES),
  state: z.enum(BATCH_STATES),
  source: z.string().default(''),
  contentHash: z.string(),
  layoutHash: z.string().optional(),
  rows: num,
  valid: num,
  invalid: num,
  expected: num,
  skipInvalid: z.enum(['0', '1']).transform((v) => v === '1'),
  // Absent on batches stored before references were registered.
  allowReusedReferences: z
    .enum(['0', '1'])
    .default('0')
    .transform((v) => v === '1'),
  metaKeys: z.string().transform((s) => z.array(z.string()).parse(JSON.parse(s))),
  totals: z.string().transform((s) => totalsSchema.parse(JSON.parse(s))),
  final: num.default(0),
  createdAt: num,
  ingestedAt: num.optional(),
  finishedAt: num.optional(),
  leaseUntil: num.optional(),
  submittedBy: z.string().optional(),
  holdForApproval: z
    .enum(['0', '1'])
    .default('0')
    .transform((v) => v === '1'),
  approvedBy: z.string().optional(),
  approvedAt: num.optional(),
  canceledBy: z.string().optional(),
  canceledAt: num.optional(),
  canceledRows: num.default(0),
  retryOf: z.string().optional(),
  retriedBy: z.string().optional(),
});

/**
 * A refused row as stored: `{line, message}`, and since refused rows keep them, the `reference`
 * and `meta` the results file shows (absent on rows stored before, which still read).
 */
const invalidRowSchema = z.object({
  line: z.number().int(),
  message: z.string(),
  reference: z.string().optional(),
  meta: z.record(z.string(), z.string()).optional(),
}) satisfies z.ZodType<InvalidRow>;

/**
 * What a row refused while it is enqueued keeps for the results file (input/instructions.ts
 * `refusedRowEcho`), as the JSON object the refusing scripts join to its invalid row.
 */
function shownJson(row: { reference?: string; meta?: Readonly<Record<string, string>> }): string {
  return JSON.stringify(refusedRowEcho(row.reference, row.meta ?? {}));
}

/** Batch `id` from its stored hash; UnreadableRecordError when it does not parse. */
function parseBatch(id: string, h: Record<string, string>): BatchRecord {
  try {
    return parseHash(h);
  } catch (err) {
    throw UnreadableRecordError.of('batch', id, err);
  }
}

function parseHash(h: Record<string, string>): BatchRecord {
  const base = hashSchema.parse(h);
  const counts = Object.fromEntries(TRACKED_STATES.map((s) => [s, 0])) as Record<
    TrackedState,
    number
  >;
  const amounts: BatchRecord['amounts'] = {};
  const totals = { ...base.totals };
  for (const [field, value] of Object.entries(h)) {
    if (field.startsWith('refused:')) {
      // Rows refused for a reference another batch holds: out of the validated totals.
      const [, what, currency] = field.split(':');
      const total = currency === undefined ? undefined : totals[currency];
      if (total === undefined || currency === undefined) continue;
      const left = { ...total };
      if (what === 'rows') left.rows -= Number(value);
      else if (what === 'amount') left.amount = (left.amount - Number(value)) as AmountMinor;
      totals[currency] = left;
    } else if (field.startsWith('n:')) {
      const state = field.slice(2) as TrackedState;
      if ((TRACKED_STATES as readonly string[]).includes(state)) counts[state] = Number(value);
    } else if (field.startsWith('a:')) {
      const [, state, currency] = field.split(':');
      if (state === undefined || currency === undefined) continue;
      if (!(TRACKED_STATES as readonly string[]).includes(state)) continue;
      const perCurrency = (amounts[state as TrackedState] ??= {});
      perCurrency[currency] = Number(value);
    }
  }
  for (const [currency, total] of Object.entries(totals)) {
    if (total.rows <= 0) delete totals[currency];
  }
  const out: BatchRecord = { ...base, totals, counts, amounts };
  for (const k of [
    'ingestedAt',
    'finishedAt',
    'leaseUntil',
    'submittedBy',
    'approvedBy',
    'approvedAt',
    'canceledBy',
    'canceledAt',
    'retryOf',
    'retriedBy',
  ] as const) {
    if (out[k] === undefined) delete out[k];
  }
  return out;
}

/** A registry value `<batch id>:<line>` (batch ids hold no colon). */
function parseHolder(value: string): ReferenceHolder {
  const at = value.lastIndexOf(':');
  return { batchId: value.slice(0, at), line: Number(value.slice(at + 1)) };
}

function pairsToObject(flat: readonly string[]): Record<string, string> {
  const obj: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) obj[flat[i] as string] = flat[i + 1] as string;
  return obj;
}

/** Key layout of batch records, under the deployment prefix. */
export function batchKeys(prefix: string) {
  return {
    batch: (id: string) => `${prefix}:batch:${id}`,
    invalid: (id: string) => `${prefix}:batch:${id}:invalid`,
    refLines: (id: string) => `${prefix}:batch:${id}:reflines`,
    held: (id: string) => `${prefix}:batch:${id}:held`,
    /** A bit per line a cancel counted (ADD_CANCELED_ROW). */
    canceledLines: (id: string) => `${prefix}:batch:${id}:canceled-lines`,
    // Not `batch:<…>`: a batch id could be any word.
    references: (type: InstructionType) => `${prefix}:batch-refs:${type}`,
    byState: (state: BatchState) => `${prefix}:idx:batch-state:${state}`,
    /** Every batch scored by createdAt: the unfiltered list (batch-list.ts). */
    byCreated: () => `${prefix}:idx:batch-created`,
  };
}

/** Batch persistence on Redis. Every state change is one Lua script (batch-lua.ts). */
export class RedisBatchStore implements BatchStore, BatchOperationsStore, BatchListStore {
  private readonly k: ReturnType<typeof batchKeys>;
  private readonly events: string;
  private readonly intentKey: (key: string) => string;
  private readonly rowsOf: (batchId: string) => string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.k = batchKeys(prefix);
    const store = storeKeys(prefix);
    this.events = store.events();
    this.intentKey = store.intent;
    this.rowsOf = store.byBatch;
  }

  /**
   * Creates the batch in `ingesting`, owned by `owner` until `now + leaseMs`, unless the id is
   * taken; then returns the stored batch instead.
   */
  async claim(init: BatchInit, owner: string, now: number, leaseMs: number): Promise<ClaimResult> {
    const fields: Record<string, string> = {
      id: init.id,
      type: init.type,
      state: 'ingesting',
      source: init.source,
      contentHash: init.contentHash,
      ...(init.layoutHash !== undefined ? { layoutHash: init.layoutHash } : {}),
      rows: String(init.rows),
      valid: String(init.valid),
      invalid: String(init.invalid),
      expected: String(init.valid),
      skipInvalid: init.skipInvalid ? '1' : '0',
      allowReusedReferences: init.allowReusedReferences === true ? '1' : '0',
      metaKeys: JSON.stringify(init.metaKeys),
      totals: JSON.stringify(init.totals),
      final: '0',
      createdAt: String(now),
      holdForApproval: init.holdForApproval === true ? '1' : '0',
      ...(init.submittedBy !== undefined ? { submittedBy: init.submittedBy } : {}),
      ...(init.retryOf !== undefined ? { retryOf: init.retryOf } : {}),
      owner,
      leaseUntil: String(now + leaseMs),
    };
    const res = (await CLAIM_BATCH.run(
      this.redis,
      3,
      this.k.batch(init.id),
      this.k.byState('ingesting'),
      this.k.byCreated(),
      JSON.stringify(fields),
      init.id,
      String(now),
      owner,
    )) as string[];
    if (res[0] === 'created') return { created: true };
    return { created: false, batch: parseBatch(init.id, pairsToObject(res.slice(1))) };
  }

  /** Takes over an ingest whose lease expired before `now`; true when this caller now owns it. */
  async takeOver(id: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    const r = (await TAKE_OVER_INGEST.run(
      this.redis,
      1,
      this.k.batch(id),
      owner,
      String(now),
      String(now + leaseMs),
    )) as number;
    return r === 1;
  }

  /** Extends the ingest lease; false when `owner` no longer holds it (taken over, or done). */
  async renew(id: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    const r = (await RENEW_INGEST.run(
      this.redis,
      1,
      this.k.batch(id),
      owner,
      String(now + leaseMs),
    )) as number;
    return r === 1;
  }

  /** Marks every row enqueued (`queued`, or `completed` if all are already final). Idempotent. */
  async finishIngest(id: string, now: number): Promise<BatchState> {
    const state = (await FINISH_INGEST.run(
      this.redis,
      6,
      this.k.batch(id),
      this.k.byState('ingesting'),
      this.k.byState('queued'),
      this.k.byState('completed'),
      this.events,
      this.k.byState('awaiting_approval'),
      id,
      String(now),
      EVENTS_MAX_LEN,
    )) as string;
    return z.enum(BATCH_STATES).parse(state);
  }

  /** @inheritdoc One sorted set per batch, scored by line (a line is held once). */
  async holdRows(id: string, rows: readonly BatchIntentRow[]): Promise<void> {
    if (rows.length === 0) return;
    const args: string[] = [];
    for (const row of rows) args.push(String(row.line), JSON.stringify(row));
    await this.redis.zadd(this.k.held(id), 'NX', ...args);
  }

  /** @inheritdoc */
  async heldRows(id: string, offset: number, limit: number): Promise<BatchIntentRow[]> {
    const flat = await this.redis.zrange(
      this.k.held(id),
      String(offset),
      String(offset + limit - 1),
      'WITHSCORES',
    );
    const rows: BatchIntentRow[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      try {
        rows.push(JSON.parse(flat[i]!) as BatchIntentRow);
      } catch (err) {
        // Named `<batch>:<line>` (the score), as the reseal names it.
        throw UnreadableRecordError.of('held row', `${id}:${flat[i + 1]!}`, err);
      }
    }
    return rows;
  }

  /**
   * `billing keys reseal`: the sealed card tokens of rows held for approval moved to the current
   * key. Each row is a member of its batch's held set: replaced by its resealed copy under the same
   * line only while it is still there (RESEAL_HELD_ROW), so an approval or a cancel that took it
   * meanwhile wins. SCANs for the held sets (every master of a cluster). A row (or its payee) that
   * is not a JSON object is counted in `unreadableRecords`, named `<batch>:<line>`, and left as it
   * is.
   */
  async resealAll(reseal: Reseal): Promise<ResealCounts> {
    const counts = newResealCounts();
    const head = this.k.held('').slice(0, -':held'.length); // `<prefix>:batch:`
    await scanEach(this.redis, this.k.held('*'), async (keys, node) => {
      for (const key of keys) {
        const batchId = key.slice(head.length, -':held'.length);
        for (let offset = 0; ; offset += 500) {
          const flat = await node.zrange(key, String(offset), String(offset + 499), 'WITHSCORES');
          if (flat.length === 0) break;
          for (let i = 0; i + 1 < flat.length; i += 2) {
            const member = flat[i]!;
            // The score is the row's line: it names a row that does not parse.
            const at = `${batchId}:${flat[i + 1]}`;
            const read = readOrCount(counts, () => {
              const row = readJsonObject('held row', at, member);
              return { row, payee: readJsonObject('held row', at, row.payee, 'payee') };
            });
            if (read === undefined) continue;
            const { row, payee } = read;
            if (payee.kind !== 'charge' || typeof payee.cardTokenSealed !== 'string') continue;
            const moved = resealOne(reseal, payee.cardTokenSealed, at, counts);
            if (moved === undefined) continue;
            const resealedPayee = JSON.stringify({ ...payee, cardTokenSealed: moved });
            const next = JSON.stringify({ ...row, payee: resealedPayee });
            const done = (await RESEAL_HELD_ROW.run(node, 1, key, member, next)) === 1;
            if (done) counts.resealed++;
            else counts.changed++;
          }
        }
      }
    });
    return counts;
  }

  /** @inheritdoc One APPROVE_BATCH call (batch-lua.ts). */
  async approve(id: string, by: string, now: number): Promise<ApproveResult> {
    const [outcome, state] = (await APPROVE_BATCH.run(
      this.redis,
      1,
      this.k.batch(id),
      by,
      String(now),
      nextCallId(),
    )) as [string, string];
    if (outcome === 'approved') return { ok: true, already: false };
    if (outcome === 'already') return { ok: true, already: true };
    if (outcome === 'not_required') return { ok: true, already: true, notRequired: true };
    const why = z
      .enum(['missing', 'same_approver', 'canceled', 'not_awaiting_approval'])
      .parse(outcome);
    const st = z.enum(BATCH_STATES).safeParse(state);
    return { ok: false, why, ...(st.success ? { state: st.data } : {}) };
  }

  /** @inheritdoc One FINISH_RELEASE call (batch-lua.ts). */
  async finishRelease(id: string, now: number): Promise<BatchState> {
    const state = (await FINISH_RELEASE.run(
      this.redis,
      5,
      this.k.batch(id),
      this.k.byState('awaiting_approval'),
      this.k.byState('queued'),
      this.k.byState('completed'),
      this.events,
      id,
      String(now),
      EVENTS_MAX_LEN,
    )) as string;
    return z.enum(BATCH_STATES).parse(state);
  }

  /** @inheritdoc One MARK_CANCELED call (batch-lua.ts). */
  async markCanceled(id: string, by: string, now: number): Promise<BatchRecord | undefined> {
    const state = (await MARK_CANCELED.run(
      this.redis,
      1,
      this.k.batch(id),
      by,
      String(now),
    )) as string;
    if (state === '') return undefined;
    return this.get(id);
  }

  /** @inheritdoc One ADD_CANCELED_ROW call (batch-lua.ts): counted once, even when resent. */
  async addCanceledRow(id: string, line: number): Promise<void> {
    await ADD_CANCELED_ROW.run(
      this.redis,
      2,
      this.k.batch(id),
      this.k.canceledLines(id),
      String(line),
    );
  }

  /** @inheritdoc */
  async linkRetry(sourceId: string, retryId: string): Promise<void> {
    await this.redis.hset(this.k.batch(sourceId), 'retriedBy', retryId);
  }

  /** @inheritdoc One REFUSE_ROWS call (batch-lua.ts). */
  async refuseRows(id: string, rows: readonly RefusedRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    const args: string[] = [];
    for (const r of rows) {
      args.push(String(r.line), String(r.amount), r.currency, r.message, shownJson(r));
    }
    const n = (await REFUSE_ROWS.run(
      this.redis,
      2,
      this.k.batch(id),
      this.k.invalid(id),
      ...args,
    )) as number;
    return Number(n);
  }

  /** The batch, or undefined. */
  async get(id: string): Promise<BatchRecord | undefined> {
    const h = await this.redis.hgetall(this.k.batch(id));
    if (Object.keys(h).length === 0) return undefined;
    return parseBatch(id, h);
  }

  /** @inheritdoc One index walk (batch-list.ts). */
  listIds(status: BatchState | undefined, limit: number, cursor?: string): Promise<BatchIdPage> {
    return listBatchIds(this.redis, this.k, status, limit, cursor);
  }

  /** @inheritdoc */
  async getMany(ids: readonly string[]): Promise<(BatchRecord | undefined)[]> {
    return (await this.readMany(ids)).map(readableOrThrow);
  }

  /** @inheritdoc One pipelined HGETALL per id. */
  async readMany(
    ids: readonly string[],
  ): Promise<(BatchRecord | UnreadableRecordError | undefined)[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.k.batch(id));
    const replies = (await pipe.exec()) ?? [];
    return replies.map(([err, h], i) => {
      if (err) throw err;
      const hash = h as Record<string, string>;
      if (Object.keys(hash).length === 0) return undefined;
      return unreadableInPlace(() => parseBatch(ids[i]!, hash));
    });
  }

  /**
   * @inheritdoc Every batch has always been in exactly one state index, scored by its createdAt:
   * their union (lowest score kept) is the index of every batch, in one atomic ZUNIONSTORE.
   */
  async reindexCreated(): Promise<number> {
    const created = this.k.byCreated();
    const sources = [created, ...BATCH_STATES.map((s) => this.k.byState(s))];
    return this.redis.zunionstore(created, sources.length, ...sources, 'AGGREGATE', 'MIN');
  }

  /** Records rows refused by validation (idempotent: one member per line). */
  async addInvalid(id: string, rows: readonly InvalidRow[]): Promise<void> {
    if (rows.length === 0) return;
    const args: string[] = [];
    for (const row of rows) args.push(String(row.line), JSON.stringify(row));
    await this.redis.zadd(this.k.invalid(id), ...args);
  }

  /** Refused rows in line order; those stored before `reference` and `meta` were kept lack them. */
  async invalidRows(id: string, offset: number, limit: number): Promise<InvalidRow[]> {
    const members = await this.redis.zrange(
      this.k.invalid(id),
      String(offset),
      String(offset + limit - 1),
    );
    return members.map((m) => invalidRowSchema.parse(JSON.parse(m)));
  }

  /**
   * Remembers lines whose row reference is their own line number. Their intent key looks exactly
   * like that of a row without a reference (`bat_<id>_<line>`), and the results file must still
   * tell the two apart. Rare, so a set costs nothing in the common case.
   */
  async markReferencedLines(id: string, lines: readonly number[]): Promise<void> {
    if (lines.length === 0) return;
    await this.redis.sadd(this.k.refLines(id), ...lines.map(String));
  }

  /** For each line, whether {@link markReferencedLines} recorded it. */
  async referencedLines(id: string, lines: readonly number[]): Promise<boolean[]> {
    if (lines.length === 0) return [];
    const r = await this.redis.smismember(this.k.refLines(id), ...lines.map(String));
    return r.map((v) => v === 1);
  }

  /** @inheritdoc One HMGET on the type's registry. */
  async referenceHolders(
    type: InstructionType,
    references: readonly string[],
  ): Promise<(ReferenceHolder | undefined)[]> {
    if (references.length === 0) return [];
    const values = await this.redis.hmget(
      this.k.references(type),
      ...references.map((r) => r.toLowerCase()),
    );
    return values.map((v) => (v === null ? undefined : parseHolder(v)));
  }

  /** @inheritdoc One CLAIM_REFERENCES call (batch-lua.ts) per chunk. */
  async claimReferences(input: ClaimReferencesInput): Promise<ClaimReferencesResult> {
    const { batchId, type, rows } = input;
    if (rows.length === 0) return { refused: [], reused: 0 };
    const args: string[] = [batchId, input.allowReused ? '1' : '0', input.messageTemplate];
    for (const r of rows) {
      args.push(
        r.reference.toLowerCase(),
        r.reference,
        String(r.line),
        String(r.amount),
        r.currency,
        shownJson(r),
      );
    }
    const [reused, flat] = (await CLAIM_REFERENCES.run(
      this.redis,
      3,
      this.k.references(type),
      this.k.batch(batchId),
      this.k.invalid(batchId),
      ...args,
    )) as [number, (number | string)[]];
    const refused: RefusedReference[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const row = rows[Number(flat[i])];
      if (row !== undefined) refused.push({ ...row, holder: parseHolder(String(flat[i + 1])) });
    }
    return { refused, reused: Number(reused) };
  }

  /** @inheritdoc One pipelined HMGET per intent (the intent hash of infra/redis/keys.ts). */
  async intentFields(
    keys: readonly string[],
    fields: readonly string[],
  ): Promise<(string | null)[][]> {
    if (keys.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const key of keys) pipe.hmget(this.intentKey(key), ...fields);
    const replies = (await pipe.exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      return value as (string | null)[];
    });
  }

  /** How many batches are in each state. */
  async countByState(): Promise<Record<BatchState, number>> {
    const pipe = this.redis.pipeline();
    for (const s of BATCH_STATES) pipe.zcard(this.k.byState(s));
    const res = (await pipe.exec()) ?? [];
    const out = {} as Record<BatchState, number>;
    BATCH_STATES.forEach((s, i) => {
      // A failed count (Redis unreachable: the pipeline still resolves) is an error, never a 0.
      const [err, n] = res[i] ?? [new Error('no reply')];
      if (err) throw err;
      out[s] = Number(n ?? 0);
    });
    return out;
  }

  /** Batch ids in `state`, oldest first. */
  list(state: BatchState, offset: number, limit: number): Promise<string[]> {
    return this.redis.zrange(this.k.byState(state), String(offset), String(offset + limit - 1));
  }

  /** @inheritdoc RESYNC_ROWS (batch-lua.ts) over each batch's rows, RESYNC_PAGE rows a call. */
  async resyncRunning(
    now: number,
  ): Promise<{ batches: number; rows: number; completed: string[] }> {
    const out = { batches: 0, rows: 0, completed: [] as string[] };
    const head = [this.events, this.k.byState('queued'), this.k.byState('completed')];
    // Every running batch first: one that completes below leaves the index being read.
    const ids = await this.redis.zrange(this.k.byState('queued'), '0', '-1');
    for (const id of ids) {
      out.batches++;
      for (let r = 0; ; r += RESYNC_PAGE) {
        const keys = await this.redis.zrange(
          this.rowsOf(id),
          String(r),
          String(r + RESYNC_PAGE - 1),
        );
        if (keys.length === 0) break;
        const rowKeys = keys.flatMap((key) => [this.intentKey(key), this.k.batch(id)]);
        const completed = (await RESYNC_ROWS.run(
          this.redis,
          head.length + rowKeys.length,
          ...head,
          ...rowKeys,
          String(now),
          EVENTS_MAX_LEN,
          String(keys.length),
          ...keys.map(() => id),
        )) as string[];
        out.rows += keys.length;
        out.completed.push(...completed);
        if (keys.length < RESYNC_PAGE) break;
      }
    }
    return out;
  }

  /**
   * @inheritdoc
   * One APPLY_EVENTS call, which XACKs in the same step. Redis refusing the script (an error
   * reply, e.g. an intent key that is not a hash) is reported as `refused`. Redis does not undo
   * what a failing script wrote before its error, but those writes are idempotent per row
   * (`batchSeen`): applying the same events again counts none of them twice.
   */
  async applyEvents(
    group: string,
    events: readonly BatchRowEvent[],
    ackIds: readonly string[],
    now: number,
  ): Promise<ApplyEventsResult> {
    const keys: string[] = [this.events, this.k.byState('queued'), this.k.byState('completed')];
    const args: string[] = [group, String(now), EVENTS_MAX_LEN, String(events.length)];
    for (const e of events) {
      keys.push(this.intentKey(e.intentKey), this.k.batch(e.batchId));
      args.push(e.streamId, e.state, e.batchId);
    }
    args.push(...ackIds);
    try {
      const completed = (await APPLY_EVENTS.run(
        this.redis,
        keys.length,
        ...keys,
        ...args,
      )) as string[];
      return { ok: true, completed };
    } catch (err) {
      // A ReplyError is Redis's answer to the script; anything else (a lost connection) is not.
      if (!(err instanceof (ReplyError as ErrorConstructor))) throw err;
      return { ok: false, refused: err.message };
    }
  }
}
