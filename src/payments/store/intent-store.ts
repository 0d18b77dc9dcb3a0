/**
 * (Over 400 lines on purpose: this class is the one place that knows the intent hash layout and
 * its indexes; splitting batch creation or the reads out would spread that layout over files.)
 *
 * Intents in Redis: a hash per intent, a history list, sorted-set indexes by state, batch and
 * subscription, a lease set and a reconcile-due set. Every state change goes through one Lua
 * script that checks the transition table of payments/state-machine.ts. References and event ids
 * are derived here (kernel/ids.ts) and handed to the scripts, which format none.
 */
import { scanEach } from '../../infra/redis/scan.ts';
import { SET_FIELDS_IF } from '../../infra/redis/set-fields-if.ts';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import {
  INTENT_STATES,
  INTENT_TYPES,
  intentStateSchema,
  type IntentState,
  type IntentType,
} from '../../kernel/intent.ts';
import {
  readableOrThrow,
  readJsonObject,
  settleUnreadable,
  UnreadableRecordError,
} from '../../kernel/errors.ts';
import { paymentEventFor, refundEventFor } from '../../kernel/events.ts';
import type { Intent, IntentDraft, IntentHistoryEntry } from '../../kernel/payment.ts';
import {
  newResealCounts,
  readOrCount,
  resealOne,
  type BatchIntent,
  type BatchIntentRow,
  type IntentFilter,
  type IntentPage,
  type IntentStore,
  type Reseal,
  type ResealCounts,
  type TransitionOptions,
  type TransitionResult,
  type UnreadableRecords,
} from '../../kernel/ports.ts';
import {
  attemptReference,
  parseRefundKey,
  paymentEventId,
  type AttemptReference,
  type IntentKey,
} from '../../kernel/ids.ts';
import type { AmountMinor, Currency } from '../../kernel/money.ts';
import { nextCallId } from '../../infra/redis/call-id.ts';
import { storeKeys, type StoreKeys } from '../../infra/redis/keys.ts';
import { allowedFrom, NEW_ATTEMPT_FROM } from '../state-machine.ts';
import { listIntentKeys } from './intent-list.ts';
import {
  CREATE_BATCH_INTENTS,
  CREATE_INTENT,
  INTENT_HASH_FIELDS,
  MARK_SEEN,
  RECORD_CHECK,
  TRANSITION_INTENT,
} from './intent-lua.ts';

const payeeSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('charge'),
    email: z.string(),
    cardTokenSealed: z.string(),
    narration: z.string().optional(),
  }),
  z.object({
    kind: z.literal('payout'),
    accountNumber: z.string(),
    bankCode: z.string(),
    bankName: z.string(),
    accountName: z.string(),
    narration: z.string(),
    paymentMode: z.enum(['bank', 'momo']),
  }),
  z.object({
    kind: z.literal('refund'),
    chargeKey: z.string(),
    chargeReference: z.string(),
    chargedMinor: z.number().int(),
    reason: z.string().optional(),
    // Absent on refunds stored before the requester was recorded.
    requestedBy: z.string().optional(),
  }),
]);

const num = z.coerce.number().int();
const optNum = num.optional();

/** The hash as stored (all strings) → a typed Intent. A corrupt hash fails loudly here. */
const hashSchema = z
  .object({
    key: z.string(),
    type: z.enum(INTENT_TYPES),
    origin: z.enum(['subscription', 'batch', 'api']),
    state: intentStateSchema,
    amount: num,
    currency: z.string(),
    attempt: num,
    reference: z.string(),
    payee: z.string().transform((s) => payeeSchema.parse(JSON.parse(s))),
    createdAt: num,
    updatedAt: num,
    reason: z.string().optional(),
    message: z.string().optional(),
    gatewayReference: z.string().optional(),
    fee: optNum,
    batchId: z.string().optional(),
    subscriptionId: z.string().optional(),
    line: optNum,
    meta: z
      .string()
      .optional()
      .transform((s) =>
        s === undefined ? undefined : z.record(z.string(), z.string()).parse(JSON.parse(s)),
      ),
    requestHash: z.string().optional(),
    incarnation: z.string().optional(),
    leaseUntil: optNum,
    sentAt: optNum,
    checks: num.default(0),
    enqueues: num.default(0),
    unsentResubmits: num.default(0),
    seenAtGateway: optNum,
    afterDataLoss: optNum,
    claimLapsedAt: optNum,
    authorizationUrl: z.string().optional(),
    requiresActionUntil: optNum,
    authorizationSealed: z.string().optional(),
  })
  .transform((h): Intent => {
    const out: Intent = {
      ...h,
      key: h.key as IntentKey,
      reference: h.reference as Intent['reference'],
      amount: h.amount as AmountMinor,
      currency: h.currency as Currency,
      fee: h.fee as AmountMinor | undefined,
    };
    for (const k of Object.keys(out) as (keyof Intent)[]) if (out[k] === undefined) delete out[k];
    // The field outlives the claim in the hash (TRANSITION_INTENT): a lease exists only while
    // the intent is submitting.
    if (out.state !== 'submitting') delete out.leaseUntil;
    return out;
  });

const OPTIONAL_TEXT = [
  'reason',
  'message',
  'gatewayReference',
  'batchId',
  'subscriptionId',
  'requestHash',
  'incarnation',
  'authorizationUrl',
  'authorizationSealed',
] as const;
const OPTIONAL_NUMBERS = [
  'fee',
  'line',
  'sentAt',
  'seenAtGateway',
  'afterDataLoss',
  'claimLapsedAt',
  'requiresActionUntil',
] as const;

/**
 * The hash → Intent mapping of {@link hashSchema} without its validation, for hashes this process
 * just wrote (a created intent) or that our own transition script returned (the claim's reply):
 * the same Intent (test/integration/intent-store-lean.test.ts compares the two) at a fraction of
 * zod's cost on the hot path (issue 18's profile). Reads of stored data (`get`, lists) keep
 * {@link hashSchema}, so a corrupt hash still fails loudly there.
 */
function trustedIntent(h: Readonly<Record<string, string | undefined>>): Intent {
  const out = {
    key: h.key,
    type: h.type,
    origin: h.origin,
    state: h.state,
    amount: Number(h.amount),
    currency: h.currency,
    attempt: Number(h.attempt),
    reference: h.reference,
    payee: JSON.parse(h.payee ?? 'null') as Intent['payee'],
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
    checks: Number(h.checks ?? 0),
    enqueues: Number(h.enqueues ?? 0),
    unsentResubmits: Number(h.unsentResubmits ?? 0),
  } as Intent;
  const mutable = out as unknown as Record<string, unknown>;
  for (const f of OPTIONAL_TEXT) if (h[f] !== undefined) mutable[f] = h[f];
  for (const f of OPTIONAL_NUMBERS) if (h[f] !== undefined) mutable[f] = Number(h[f]);
  if (h.meta !== undefined) out.meta = JSON.parse(h.meta) as Record<string, string>;
  // See hashSchema: a lease exists only while the intent is submitting.
  if (h.leaseUntil !== undefined && out.state === 'submitting')
    out.leaseUntil = Number(h.leaseUntil);
  return out;
}

/** One entry of a list page: its key and score in the index walked, and the intent or why not. */
export type ListedIntent = { key: string; score: number } & (
  | { intent: Intent; unreadable?: undefined }
  | { intent?: undefined; unreadable: UnreadableRecordError }
);

/** The page of `entries`: the intents, and the unreadable ones when there are any. */
export function pageOf(entries: readonly ListedIntent[], next: string | undefined): IntentPage {
  const intents: Intent[] = [];
  const unreadable: UnreadableRecordError[] = [];
  for (const e of entries) {
    if (e.intent) intents.push(e.intent);
    else unreadable.push(e.unreadable);
  }
  return {
    intents,
    ...(unreadable.length > 0 ? { unreadable } : {}),
    ...(next !== undefined ? { next } : {}),
  };
}

/** Every Intent field is in the read-back reply's list: this does not compile otherwise. */
type UnlistedField = Exclude<keyof Intent, (typeof INTENT_HASH_FIELDS)[number]>;
const _everyFieldListed: [UnlistedField] extends [never] ? true : UnlistedField = true;

/**
 * The intent of a transition script's read-back reply (after its tag and `from`, the value of each
 * of {@link INTENT_HASH_FIELDS}, nil where absent): see {@link trustedIntent}.
 */
function fromValues(reply: readonly (string | null)[]): Intent {
  const obj: Record<string, string> = {};
  for (let i = 0; i < INTENT_HASH_FIELDS.length; i++) {
    const v = reply[i + 2];
    if (v !== null && v !== undefined) obj[INTENT_HASH_FIELDS[i] as string] = v;
  }
  return trustedIntent(obj);
}

/**
 * The intent a transition leaves, from the caller's copy and the transition's own changes: what
 * TRANSITION_INTENT writes, mirrored (test/integration/intent-store-lean.test.ts compares the two
 * against a read-back). Fields changed meanwhile by something other than a transition (a reconcile
 * check count, `seenAtGateway`) read as in the caller's copy.
 */
function applied(
  base: Intent,
  to: IntentState,
  now: number,
  opts: TransitionOptions,
  newReference: AttemptReference | undefined,
): Intent {
  const out: Intent = { ...base, state: to, updatedAt: now };
  if (newReference !== undefined) {
    out.attempt = base.attempt + 1;
    out.reference = newReference;
    out.checks = 0;
    out.unsentResubmits = 0;
    for (const f of [
      'reason',
      'message',
      'gatewayReference',
      'fee',
      'sentAt',
      'seenAtGateway',
      'authorizationUrl',
      'requiresActionUntil',
    ] as const)
      delete out[f];
  }
  if (opts.unsentResubmit) out.unsentResubmits = out.unsentResubmits + 1;
  if (to === 'queued') out.enqueues = base.enqueues + 1;
  if (opts.payee !== undefined) out.payee = opts.payee;
  const patch = (opts.patch ?? {}) as Record<string, unknown>;
  const mutable = out as unknown as Record<string, unknown>;
  for (const [f, v] of Object.entries(patch)) {
    if (v === undefined || v === '') delete mutable[f];
    else mutable[f] = v;
  }
  if (to !== 'submitting') delete out.leaseUntil;
  return out;
}

/**
 * Random bytes for incarnations, drawn 4 KiB at a time: a randomBytes call per intent showed in the
 * producer's profile.
 */
let incarnationPool = Buffer.alloc(0);
let incarnationAt = 0;

/**
 * Intent.incarnation: random, fixed at creation. Not a secret: it keeps the job ids of a key
 * created again apart from the old one's.
 */
function newIncarnation(): string {
  if (incarnationAt + 4 > incarnationPool.length) {
    incarnationPool = randomBytes(4096);
    incarnationAt = 0;
  }
  incarnationAt += 4;
  return incarnationPool.toString('hex', incarnationAt - 4, incarnationAt);
}

const csv = (states: IntentState[]) => `,${states.join(',')},`;

/** Intents per script call: big enough to amortise the call, small enough not to stall Redis. */
const INTENTS_PER_CALL = 100;

/** Allowed-from lists are derived once from the domain table, for both intent types. */
const ALLOWED = Object.fromEntries(
  INTENT_STATES.map((to) => [
    to,
    { charge: csv(allowedFrom(to, 'charge')), payout: csv(allowedFrom(to, 'payout')) },
  ]),
) as Record<IntentState, { charge: string; payout: string }>;

/** The allowed-from lists of `to`, narrowed to `onlyFrom` (TransitionOptions.onlyFrom). */
function narrowedFrom(
  to: IntentState,
  onlyFrom: readonly IntentState[],
): { charge: string; payout: string } {
  const keep = (type: 'charge' | 'payout') =>
    csv(allowedFrom(to, type).filter((s) => onlyFrom.includes(s)));
  return { charge: keep('charge'), payout: keep('payout') };
}

/**
 * `fields` of the hash at `hash` (intent `id`), for a pass over every key under the prefix; a key
 * there that is not a hash (a hand-made string, say) is an UnreadableRecordError in their place.
 */
async function fieldsOf(
  conn: Redis,
  hash: string,
  id: string,
  fields: readonly string[],
): Promise<(string | null)[] | UnreadableRecordError> {
  try {
    return await conn.hmget(hash, ...fields);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('WRONGTYPE'))
      return new UnreadableRecordError('intent', id, 'not a hash');
    throw err;
  }
}

/** What `billing payments reindex` found: how many intents it indexed, which it could not read. */
export interface ReindexCounts extends UnreadableRecords {
  indexed: number;
}

/** The fields of an intent hash the created indexes are made of, as this version writes them. */
const createdEntrySchema = z.object({
  key: z.string().min(1),
  type: z.enum(INTENT_TYPES),
  // Milliseconds: never a score Redis refuses (`nan`, a word) or one no date has.
  createdAt: z.string().regex(/^\d{1,15}$/),
});

/** The created-index entry of intent `id`; UnreadableRecordError when a field does not fit. */
function createdEntry(
  id: string,
  fields: Record<'key' | 'type' | 'createdAt', string | null | undefined>,
): z.output<typeof createdEntrySchema> {
  try {
    return createdEntrySchema.parse(fields);
  } catch (err) {
    throw UnreadableRecordError.of('intent', id, err);
  }
}

/** Options of a {@link RedisIntentStore}. */
export interface IntentStoreOptions {
  /**
   * The outbound gateway rate limit that claims (`rateLimited` transitions) take a token of:
   * `perWindow` tokens per `windowMs`, counted at the key layout's `rateLimit()` key. The
   * composition root passes SAYSWITCH_RATE_LIMIT_PER_SEC per 1 s (divided by the shard count when
   * intents are spread over several stores). Without it, claims take no token.
   */
  gatewayRateLimit?: { perWindow: number; windowMs: number };
  /**
   * Whether a Redis data loss is unacknowledged, as this process last saw it (the composition
   * root passes its DeploymentEpoch's `isLost`). Intents created meanwhile are marked
   * `afterDataLoss`: single ones, batch rows, and refunds (refund-store.ts reads this store's
   * view). Without it, none is.
   */
  dataLossUnacknowledged?: () => boolean;
}

export class RedisIntentStore implements IntentStore {
  private readonly k: StoreKeys;
  private readonly rateLimit: { perWindow: string; windowMs: string } | undefined;
  /**
   * Per target state, a transition's constant keys and arguments, built once (they showed in the
   * profile): the target's state index and those of the states it may come from (for charges
   * and payouts alike), and the states of the latter in order (TRANSITION_INTENT).
   */
  private readonly transitionConst: Record<
    IntentState,
    { keys: string[]; fromStates: string; charge: string; payout: string }
  >;
  private readonly rateLimitKey: string;
  /** IntentStoreOptions.dataLossUnacknowledged; also read by the refund store over this one. */
  readonly dataLossUnacknowledged: () => boolean;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    opts: IntentStoreOptions = {},
  ) {
    this.k = storeKeys(prefix);
    const k = this.k;
    this.transitionConst = Object.fromEntries(
      INTENT_STATES.map((to) => {
        const from = INTENT_STATES.filter(
          (s) => allowedFrom(to, 'charge').includes(s) || allowedFrom(to, 'payout').includes(s),
        );
        const keys = [k.leases(), k.reconcileDue(), k.events(), k.byState(to)];
        for (const s of from) keys.push(k.byState(s));
        return [to, { keys, fromStates: from.join(','), ...ALLOWED[to] }];
      }),
    ) as RedisIntentStore['transitionConst'];
    this.rateLimitKey = this.k.rateLimit();
    const limit = opts.gatewayRateLimit;
    this.rateLimit = limit
      ? { perWindow: String(limit.perWindow), windowMs: String(limit.windowMs) }
      : undefined;
    this.dataLossUnacknowledged = opts.dataLossUnacknowledged ?? (() => false);
  }

  /** @inheritdoc */
  async create(draft: IntentDraft, now: number): Promise<{ created: boolean; intent: Intent }> {
    const fields: Record<string, string> = {
      key: draft.key,
      type: draft.type,
      origin: draft.origin,
      state: 'queued',
      amount: String(draft.amount),
      currency: draft.currency,
      attempt: '1',
      reference: attemptReference(draft.key, 1),
      payee: JSON.stringify(draft.payee),
      createdAt: String(now),
      updatedAt: String(now),
      checks: '0',
      enqueues: '1',
      unsentResubmits: '0',
      incarnation: newIncarnation(),
    };
    if (draft.batchId !== undefined) fields.batchId = draft.batchId;
    if (draft.subscriptionId !== undefined) fields.subscriptionId = draft.subscriptionId;
    if (draft.line !== undefined) fields.line = String(draft.line);
    if (draft.meta !== undefined && Object.keys(draft.meta).length > 0)
      fields.meta = JSON.stringify(draft.meta);
    if (draft.requestHash !== undefined) fields.requestHash = draft.requestHash;

    const secondary =
      draft.batchId !== undefined
        ? { key: this.k.byBatch(draft.batchId), score: String(draft.line ?? now) }
        : draft.subscriptionId !== undefined
          ? { key: this.k.bySubscription(draft.subscriptionId), score: String(now) }
          : { key: this.k.byBatch('-none-'), score: '' };
    const history: IntentHistoryEntry = { at: now, from: null, to: 'queued', attempt: 1 };
    const created = (await CREATE_INTENT.run(
      this.redis,
      6,
      this.k.intent(draft.key),
      this.k.history(draft.key),
      this.k.byState('queued'),
      secondary.key,
      this.k.byCreated(),
      this.k.byCreated(draft.type),
      JSON.stringify(fields),
      String(now),
      JSON.stringify(history),
      draft.key,
      secondary.score,
      this.dataLossUnacknowledged() ? '1' : '',
    )) as number;
    // Created: what was written is the intent (no read back; 2: the script added afterDataLoss).
    // Existing: read what is stored.
    if (created === 2) fields.afterDataLoss = String(now);
    const intent = created !== 0 ? trustedIntent(fields) : await this.get(draft.key);
    if (!intent) throw new Error(`intent ${draft.key} vanished after create`);
    return { created: created !== 0, intent };
  }

  /** @inheritdoc */
  async list(filter: IntentFilter, limit: number, cursor?: string): Promise<IntentPage> {
    const page = await this.listEntries(filter, limit, cursor);
    return pageOf(page.entries, page.next);
  }

  /**
   * {@link list}'s page as its entries in the index's order, each with its score there, an intent
   * this version cannot read in its place (the sharded store merges shards' pages by score).
   */
  async listEntries(
    filter: IntentFilter,
    limit: number,
    cursor?: string,
  ): Promise<{ entries: ListedIntent[]; next?: string }> {
    const page = await listIntentKeys(this.redis, this.k, filter, limit, cursor);
    const read = await Promise.all(page.keys.map((key) => settleUnreadable(this.get(key))));
    const entries: ListedIntent[] = [];
    for (const [i, r] of read.entries()) {
      // undefined: the intent was deleted after the index was read.
      if (r === undefined) continue;
      const at = { key: page.keys[i]!, score: page.scores[i]! };
      entries.push(
        r instanceof UnreadableRecordError ? { ...at, unreadable: r } : { ...at, intent: r },
      );
    }
    return page.next === undefined ? { entries } : { entries, next: page.next };
  }

  /**
   * Adds every stored intent to the created indexes the lists walk (intents stored before those
   * indexes existed are missing from them). Idempotent; SCANs the prefix (every master of a cluster), so run it once after
   * upgrading (`billing payments reindex`). An intent hash without a `key`, a known `type` or a
   * `createdAt` in milliseconds is not indexed: counted in `unreadableRecords`, named, and left
   * as it is.
   */
  async reindexCreated(): Promise<ReindexCounts> {
    const counts: ReindexCounts = { indexed: 0, unreadableRecords: 0, unreadableRecordsAt: [] };
    const head = this.k.intent('');
    await scanEach(this.redis, this.k.intent('*'), async (keys) => {
      const hashes = keys.filter((k) => !k.endsWith(':history'));
      const rows = await Promise.all(
        hashes.map((h) =>
          fieldsOf(this.redis, h, h.slice(head.length), ['key', 'type', 'createdAt']),
        ),
      );
      const pipe = this.redis.pipeline();
      for (const [i, row] of rows.entries()) {
        if (readOrCount(counts, () => readableOrThrow(row)) === undefined) continue;
        const [key, type, createdAt] = row as (string | null)[];
        const id = hashes[i]!.slice(head.length);
        // Gone between the SCAN and the read (a clean-up): nothing to index, nothing wrong.
        if (key === null && type === null && createdAt === null) continue;
        const entry = readOrCount(counts, () => createdEntry(id, { key, type, createdAt }));
        if (entry === undefined) continue;
        pipe.zadd(this.k.byCreated(), entry.createdAt, entry.key);
        pipe.zadd(this.k.byCreated(entry.type), entry.createdAt, entry.key);
        counts.indexed++;
      }
      for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
    });
    return counts;
  }

  /**
   * `billing keys reseal`: every intent's sealed card token (a charge's payee) and card
   * authorization moved to the current key, each intent by a compare-and-set, so
   * a transition that wrote the field meanwhile wins and the value is counted `changed` (SET_FIELDS_IF). SCANs the
   * prefix (every master of a cluster), like {@link reindexCreated}. An intent whose payee is not
   * a JSON object is counted in `unreadableRecords`, named, and left as it is.
   */
  async resealAll(reseal: Reseal): Promise<ResealCounts> {
    const counts = newResealCounts();
    await scanEach(this.redis, this.k.intent('*'), async (keys, node) => {
      const hashes = keys.filter((k) => !k.endsWith(':history'));
      const head = this.k.intent('');
      const rows = await Promise.all(
        hashes.map((h) =>
          fieldsOf(node, h, h.slice(head.length), ['key', 'payee', 'authorizationSealed']),
        ),
      );
      for (const [i, row] of rows.entries()) {
        if (readOrCount(counts, () => readableOrThrow(row)) === undefined) continue;
        const [key, payee, authorization] = row as (string | null)[];
        const args: string[] = [];
        const at = key ?? hashes[i]!;
        // A payee that does not parse: the whole intent is left as it is, named.
        const p = payee
          ? readOrCount(counts, () => readJsonObject('intent', at, payee, 'payee'))
          : {};
        if (p === undefined) continue;
        if (payee && p.kind === 'charge' && typeof p.cardTokenSealed === 'string') {
          const moved = resealOne(reseal, p.cardTokenSealed, at, counts);
          if (moved !== undefined)
            args.push('payee', payee, JSON.stringify({ ...p, cardTokenSealed: moved }));
        }
        if (authorization) {
          const moved = resealOne(reseal, authorization, at, counts);
          if (moved !== undefined) args.push('authorizationSealed', authorization, moved);
        }
        if (args.length === 0) continue;
        const done = (await SET_FIELDS_IF.run(node, 1, hashes[i]!, ...args, '')) === 1;
        if (done) counts.resealed += args.length / 3;
        else counts.changed += args.length / 3;
      }
    });
    return counts;
  }

  /** @inheritdoc */
  async get(key: string): Promise<Intent | undefined> {
    const h = await this.redis.hgetall(this.k.intent(key));
    if (Object.keys(h).length === 0) return undefined;
    try {
      return hashSchema.parse(h);
    } catch (err) {
      throw UnreadableRecordError.of('intent', key, err);
    }
  }

  /** @inheritdoc */
  async history(key: string): Promise<IntentHistoryEntry[]> {
    const lines = await this.redis.lrange(this.k.history(key), 0, -1);
    return lines.map((l) => JSON.parse(l) as IntentHistoryEntry);
  }

  /**
   * @inheritdoc
   * The script is handed the reference of a new attempt and the event id, both derived from the
   * attempt: without `expectAttempt`, the stored attempt is read first and expected (and read
   * again should another attempt open in between), which changes no outcome.
   */
  async transition(
    key: string,
    to: IntentState,
    now: number,
    opts: TransitionOptions = {},
  ): Promise<TransitionResult> {
    if (opts.expectAttempt !== undefined)
      return this.transitionAt(key, to, now, opts, opts.expectAttempt);
    for (;;) {
      const stored = await this.redis.hget(this.k.intent(key), 'attempt');
      if (stored === null) return { ok: false, why: 'missing' };
      const res = await this.transitionAt(key, to, now, opts, Number(stored));
      if (res.ok || res.why !== 'stale') return res;
    }
  }

  /** One transition script call, refused as `stale` unless the intent is on `attempt`. */
  private async transitionAt(
    key: string,
    to: IntentState,
    now: number,
    opts: TransitionOptions,
    attempt: number,
  ): Promise<TransitionResult> {
    const patch: Record<string, string> = {};
    for (const [f, v] of Object.entries(opts.patch ?? {})) {
      patch[f] = v === undefined ? '' : String(v);
    }
    if (opts.payee !== undefined) {
      if (!opts.newAttempt) throw new RangeError('a payee changes only with a new attempt');
      patch.payee = JSON.stringify(opts.payee);
    }
    if (opts.newAttempt && to !== 'queued') {
      throw new RangeError(`a new attempt is opened into queued, not ${to}`);
    }
    const newReference = opts.newAttempt
      ? attemptReference(key as IntentKey, attempt + 1)
      : undefined;
    const limited = opts.rateLimited === true && this.rateLimit !== undefined;
    // The caller's copy stands in for a read-back only when it is on the attempt expected.
    const known = opts.known?.attempt === attempt ? opts.known : undefined;
    // A refund's key says it is one (kernel/ids.ts): it publishes refund.*, never payment.*.
    const event = parseRefundKey(key) ? refundEventFor(to) : paymentEventFor(to);
    const eventId =
      event === undefined
        ? ''
        : paymentEventId(newReference ?? attemptReference(key as IntentKey, attempt), to);
    const c = this.transitionConst[to];
    // A new reference for the same money only after the gateway failed the previous one: refused
    // in the script's compare-and-set from any other state, whatever `onlyFrom` says.
    const onlyFrom = opts.newAttempt
      ? NEW_ATTEMPT_FROM.filter((s) => opts.onlyFrom?.includes(s) ?? true)
      : opts.onlyFrom;
    const allowed = onlyFrom === undefined ? c : narrowedFrom(to, onlyFrom);
    const keys = [this.k.intent(key), this.k.history(key), ...c.keys];
    if (limited) keys.push(this.rateLimitKey);
    const patchJson = Object.keys(patch).length > 0 ? JSON.stringify(patch) : '';
    // Positional: ARGV 8.. as TRANSITION_INTENT names them.
    const optional = [
      known ? '' : '1',
      patchJson,
      event ?? '',
      eventId,
      limited ? this.rateLimit.perWindow : '',
      limited ? this.rateLimit.windowMs : '',
      opts.reconcileAt === undefined ? '' : String(opts.reconcileAt),
      opts.reason ?? '',
      newReference ?? '',
      opts.unsentResubmit ? '1' : '',
      opts.resolution ? JSON.stringify(opts.resolution) : '',
      opts.claimLease === undefined ? '' : String(opts.claimLease),
      opts.neverSent === true ? '1' : '',
      nextCallId(),
    ];
    const res = (await TRANSITION_INTENT.run(
      this.redis,
      keys.length,
      ...keys,
      key,
      to,
      String(now),
      allowed.charge,
      allowed.payout,
      c.fromStates,
      String(attempt),
      ...optional,
    )) as (string | null)[];
    const tag = res[0];
    if (tag === 'ok') {
      const from = res[1] as IntentState;
      if (!known) return { ok: true, from, intent: fromValues(res) };
      return { ok: true, from, intent: applied(known, to, now, opts, newReference) };
    }
    if (tag === 'missing') return { ok: false, why: 'missing' };
    if (tag === 'limited')
      return {
        ok: false,
        why: 'rate_limited',
        state: res[1] as IntentState,
        attempt: Number(res[2]),
        retryInMs: Number(res[3]),
      };
    return {
      ok: false,
      why: tag === 'stale' ? 'stale' : 'refused',
      state: res[1] as IntentState,
      attempt: Number(res[2]),
    };
  }

  /**
   * Records a reconcile check (count and next time) if the intent is still where the checker saw
   * it; returns false when something else moved it meanwhile. The call's id lets RECORD_CHECK
   * answer a second run of this very call (a resend) true, as the first run did.
   */
  async recordCheck(intent: Intent, checks: number, nextAt: number | undefined): Promise<boolean> {
    const r = (await RECORD_CHECK.run(
      this.redis,
      2,
      this.k.intent(intent.key),
      this.k.reconcileDue(),
      intent.key,
      intent.state,
      String(intent.attempt),
      String(checks),
      nextAt === undefined ? '' : String(nextAt),
      String(intent.checks),
      nextCallId(),
    )) as number;
    return r === 1;
  }

  /** @inheritdoc */
  async markSeenAtGateway(key: string, attempt: number, at: number): Promise<boolean> {
    const r = (await MARK_SEEN.run(
      this.redis,
      1,
      this.k.intent(key),
      String(attempt),
      String(at),
    )) as number;
    return r === 1;
  }

  /** @inheritdoc */
  dueForReconcile(now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.k.reconcileDue(), '-inf', String(now), 'LIMIT', 0, limit);
  }

  /** @inheritdoc */
  expiredLeases(now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.k.leases(), '-inf', String(now - 1), 'LIMIT', 0, limit);
  }

  /** @inheritdoc */
  queuedSince(before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(
      this.k.byState('queued'),
      '-inf',
      String(before),
      'LIMIT',
      0,
      limit,
    );
  }

  /** Intent keys of a batch in line order. */
  batchKeys(batchId: string, offset: number, limit: number): Promise<string[]> {
    return this.redis.zrange(this.k.byBatch(batchId), String(offset), String(offset + limit - 1));
  }

  /** Intent keys in `state` whose last change is before `before`, oldest first. */
  keysUpdatedBefore(state: IntentState, before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(
      this.k.byState(state),
      '-inf',
      String(before),
      'LIMIT',
      0,
      limit,
    );
  }

  /** Intent keys in one state, oldest change first. */
  keysInState(state: IntentState, limit: number): Promise<string[]> {
    return this.redis.zrange(this.k.byState(state), '0', String(limit - 1));
  }

  async countByState(): Promise<Record<IntentState, number>> {
    const pipe = this.redis.pipeline();
    for (const s of INTENT_STATES) pipe.zcard(this.k.byState(s));
    const res = (await pipe.exec()) ?? [];
    const out = {} as Record<IntentState, number>;
    INTENT_STATES.forEach((s, i) => {
      // A pipeline resolves even when its commands failed (Redis unreachable): a failed count is
      // an error, never a 0, or /metrics and the review inbox would say nothing waits.
      const [err, n] = res[i] ?? [new Error('no reply')];
      if (err) throw err;
      out[s] = Number(n ?? 0);
    });
    return out;
  }

  /**
   * Creates the intents of a chunk of batch rows with the intent store's hash layout
   * (`RedisIntentStore.create`: same fields, indexes and first history line), in script calls of
   * {@link INTENTS_PER_CALL} pipelined together. One `create()` per row (a script call, a read-back
   * and a parse each) made intent creation cost more than twice the `addBulk` it precedes. The
   * batch tests check that an intent made here reads back exactly as one made by `create()`.
   * Intents that already exist are left untouched and reported as they are, so a resumed ingest
   * enqueues only what still waits. Like `create()`, rows created while a Redis data loss is
   * unacknowledged are marked `afterDataLoss` (docs/operations.md "Redis lost its data").
   */
  async createBatchRows(chunk: {
    batchId: string;
    type: IntentType;
    rows: readonly BatchIntentRow[];
    now: number;
  }): Promise<BatchIntent[]> {
    const { batchId, type, rows, now } = chunk;
    if (rows.length === 0) return [];
    const k = this.k;
    const history = JSON.stringify({
      at: now,
      from: null,
      to: 'queued',
      attempt: 1,
    } satisfies IntentHistoryEntry);
    // One draw of randomness for the whole chunk: 4 bytes (8 hex characters) per intent.
    const pool = randomBytes(4 * rows.length).toString('hex');
    const incarnations = rows.map((_, i) => pool.slice(8 * i, 8 * i + 8));
    // As create(): rows created while a data loss is unacknowledged are marked afterDataLoss (an
    // ingest, a release of held rows and a retry of failed rows all create them here).
    const lost = this.dataLossUnacknowledged() ? '1' : '';
    const calls: { numKeys: number; args: string[] }[] = [];
    for (let start = 0; start < rows.length; start += INTENTS_PER_CALL) {
      const group = rows.slice(start, start + INTENTS_PER_CALL);
      let i = start;
      const keys = [k.byState('queued'), k.byBatch(batchId), k.byCreated(), k.byCreated(type)];
      const args = [String(now), history, batchId, type, String(group.length), lost];
      for (const r of group) {
        keys.push(k.intent(r.key), k.history(r.key));
        args.push(
          r.key,
          String(r.line),
          String(r.amount),
          r.currency,
          r.payee,
          r.meta,
          attemptReference(r.key, 1),
          incarnations[i++] ?? '',
        );
      }
      calls.push({ numKeys: keys.length, args: [...keys, ...args] });
    }
    // The script creates only what is absent, so a call it re-runs never creates twice.
    const replies = await CREATE_BATCH_INTENTS.runPipelined(this.redis, calls);
    const out: BatchIntent[] = [];
    replies.forEach(([err, value], c) => {
      if (err) throw err;
      const results = value as (number | string[])[];
      const group = rows.slice(c * INTENTS_PER_CALL, (c + 1) * INTENTS_PER_CALL);
      group.forEach((r, i) => {
        const res = results[i];
        const intent: BatchIntent = {
          key: r.key,
          type,
          created: res === 1,
          state: 'queued',
          attempt: 1,
          enqueues: 1,
          reference: attemptReference(r.key, 1),
          amount: r.amount,
          currency: r.currency,
          incarnation: incarnations[c * INTENTS_PER_CALL + i] ?? '',
        };
        if (Array.isArray(res)) {
          const [, state, attempt, enqueues, reference, incarnation] = res;
          intent.state = intentStateSchema.parse(state);
          intent.attempt = Number(attempt);
          intent.enqueues = Number(enqueues);
          if (reference) intent.reference = reference as AttemptReference;
          if (incarnation) intent.incarnation = incarnation;
          else delete intent.incarnation;
        }
        out.push(intent);
      });
    });
    return out;
  }

  /** {@link RedisIntentStore.createBatchRows} from drafts (one batch and type, each with a line). */
  createBatchDrafts(drafts: readonly IntentDraft[], now: number): Promise<BatchIntent[]> {
    const first = drafts[0];
    if (first === undefined) return Promise.resolve([]);
    const { batchId, type } = first;
    if (batchId === undefined) throw new RangeError('batch intents need a batch id');
    const rows = drafts.map((d): BatchIntentRow => {
      if (
        d.batchId !== batchId ||
        d.type !== type ||
        d.line === undefined ||
        d.origin !== 'batch'
      ) {
        throw new RangeError(`intent ${d.key} is not a ${type} row of batch ${batchId}`);
      }
      return {
        key: d.key,
        line: d.line,
        amount: d.amount,
        currency: d.currency,
        payee: JSON.stringify(d.payee),
        meta: d.meta !== undefined && Object.keys(d.meta).length > 0 ? JSON.stringify(d.meta) : '',
      };
    });
    return this.createBatchRows({ batchId, type, rows, now });
  }
}
