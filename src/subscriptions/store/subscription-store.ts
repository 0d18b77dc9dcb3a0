/**
 * Subscriptions in Redis, under the deployment's prefix:
 *
 * - `<prefix>:sub:<id>`: a hash with the record as JSON (`doc`) and a `version`;
 * - `<prefix>:subs:due`: sorted set of billable subscriptions by next charge time, so a tick's
 *   cost follows the due ones, not the total;
 * - `<prefix>:subs:all`: every id, lexicographically, for listing;
 * - `<prefix>:subs:ids-folded`: every id by its lower-case form (ids are one id ignoring case: a
 *   create of another id in another case is refused), and `…:built` once it holds every stored id;
 * - `<prefix>:subs:email:<digest>`: the ids of one customer email (ignoring case; the key names a
 *   sha256 of it, not the address), and `<prefix>:subs:email:indexed`, every id that is in its
 *   email's set: both written by the create; a list by email first indexes the ids of `subs:all`
 *   that are not in `…:indexed` (`ensureEmailIndex`: subscriptions older than the index, or
 *   created by a process of an older version during a rolling upgrade);
 * - `<prefix>:clock:<id>`, `<prefix>:clock:<id>:due`, `<prefix>:clock:<id>:subs`: a test clock
 *   (test-clock-store.ts), the due index of its subscriptions (they are never in `subs:due`) and
 *   their ids;
 * - subscription events go to `<prefix>:events`, the stream payment events use.
 *
 * Every change is one Lua step that checks the version the change was computed from (compare-
 * and-set), writes the record, rescoring the due index from the record itself, and appends the
 * change's events — atomically, so a crash can neither lose an event nor publish one for a
 * change that did not happen. The rules live in subscriptions/record.ts and the files it names;
 * this file only stores. Implements the SubscriptionStore port (subscriptions/ports.ts).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BillingEvent } from '../../kernel/events.ts';
import {
  readableOrThrow,
  readJsonObject,
  unreadableInPlace,
  UnreadableRecordError,
} from '../../kernel/errors.ts';
import {
  SubscriptionContentionError,
  TestClockGoneError,
  type MutateResult,
  type SubscriptionStore,
  type Versioned,
} from '../ports.ts';
import { dueScore, subscriptionSchema, type Decision, type Subscription } from '../record.ts';
import { storeKeys } from '../../infra/redis/keys.ts';
import { nextCallId } from '../../infra/redis/call-id.ts';
import { LuaScript } from '../../infra/redis/lua-script.ts';
import { SET_FIELDS_IF } from '../../infra/redis/set-fields-if.ts';
import {
  newResealCounts,
  readOrCount,
  resealOne,
  type Reseal,
  type ResealCounts,
} from '../../kernel/ports.ts';
import { readManyVersioned, readVersioned } from './versioned-docs.ts';
import { RedisTestClockStore } from './test-clock-store.ts';

const EVENTS_MAX_LEN = 1_000_000;

/**
 * KEYS: 1 record hash, 2 due index (the deployment's, or its test clock's), 3 all index,
 * 4 events stream, 5 its test clock's members (else the all index again), 6 the ids by their
 * lower-case form, 7 the marker that 6 holds every stored id, 8 its test clock's hash (else the
 * all index again), 9 the ids of its customer's email, 10 every id indexed by email.
 * ARGV: 1 id, 2 expected version ('0': must not exist), 3 record JSON, 4 due score ('' removes),
 * 5 events JSON array of {id, type, at, data (a JSON string)}, 6 events max length,
 * 7 '1' when KEYS[5] is a test clock's members, 9 the id in lower case,
 * 8 this call's id (infra/redis/call-id.ts), stored as `lastSave`:
 * a record whose `lastSave` is it was written by this very call, run again (the Redis client
 * resends a command whose reply a dropped connection lost), and is answered as the first run was
 * — {1, its version} — not as a conflict, which made a resume re-decide on the resumed record,
 * find nothing to do and never re-arm the dunning retry.
 * Returns {1, new version} or {0, current version ('0' when missing)}; on a create, {2, the
 * stored id} when another id is this one in another case (ids are one id ignoring case: two
 * would bill one customer twice), and {3, ''} while the lower-case index is not built yet
 * (`ensureFoldedIds` builds it, once per deployment), and {4, ''} on a create under a test clock
 * that no longer exists (deleted since the caller read it: clocks-service.ts `deleteTestClock`
 * counts the members it canceled, and a member added after would live on no clock).
 */
/** How many keys SAVE_SUBSCRIPTION takes. */
const SAVE_KEYS = 10;

export const SAVE_SUBSCRIPTION = new LuaScript(`
local cur = redis.call('HMGET', KEYS[1], 'version', 'lastSave')
local v = cur[1]
if v and cur[2] == ARGV[8] then return {1, v} end
if ARGV[2] == '0' then
  if v then return {0, v} end
  if redis.call('EXISTS', KEYS[7]) == 0 then return {3, ''} end
  if ARGV[7] == '1' and redis.call('EXISTS', KEYS[8]) == 0 then return {4, ''} end
  local other = redis.call('HGET', KEYS[6], ARGV[9])
  if other and other ~= ARGV[1] then return {2, other} end
elseif v ~= ARGV[2] then
  return {0, v or '0'}
end
local nv = tostring((tonumber(v) or 0) + 1)
redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'version', nv, 'lastSave', ARGV[8])
if ARGV[4] == '' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
if not v then
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  redis.call('HSET', KEYS[6], ARGV[9], ARGV[1])
  if ARGV[7] == '1' then redis.call('ZADD', KEYS[5], 0, ARGV[1]) end
  redis.call('ZADD', KEYS[9], 0, ARGV[1])
  redis.call('ZADD', KEYS[10], 0, ARGV[1])
end
for _, e in ipairs(cjson.decode(ARGV[5])) do
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'id', e.id, 'type', e.type, 'at', e.at, 'data', e.data)
end
return {1, nv}
`);

/** A customer email as it names its index: sha256 of the lower-case address, 32 hex digits. */
function emailDigest(email: string): string {
  return createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 32);
}

/** Subscription keys under a prefix. */
export function subscriptionKeys(prefix: string) {
  return {
    sub: (id: string) => `${prefix}:sub:${id}`,
    due: () => `${prefix}:subs:due`,
    all: () => `${prefix}:subs:all`,
    /** Every id by its lower-case form (ids are one id ignoring case), and its built marker. */
    foldedIds: () => `${prefix}:subs:ids-folded`,
    foldedIdsBuilt: () => `${prefix}:subs:ids-folded:built`,
    clock: (id: string) => `${prefix}:clock:${id}`,
    clockDue: (id: string) => `${prefix}:clock:${id}:due`,
    clockSubs: (id: string) => `${prefix}:clock:${id}:subs`,
    advancingClocks: () => `${prefix}:clocks:advancing`,
    /** The ids of one customer email, ignoring case (a digest of it names the key). */
    byEmail: (email: string) => `${prefix}:subs:email:${emailDigest(email)}`,
    /** Every id that is in its email's index. */
    byEmailIndexed: () => `${prefix}:subs:email:indexed`,
    /** Scratch set of one `ensureEmailIndex` call (expires). */
    byEmailMissing: (token: string) => `${prefix}:subs:email:missing:${token}`,
    events: () => storeKeys(prefix).events(),
    /** The intent store's per-subscription index (intent keys by creation time). */
    intents: (id: string) => storeKeys(prefix).bySubscription(id),
  };
}

/** The record of subscription `id` from its stored hash; UnreadableRecordError when it does not parse. */
function parse(
  id: string,
  doc: string | null | undefined,
  version: string | null | undefined,
): Versioned | undefined {
  if (doc === null || doc === undefined) return undefined;
  try {
    return { sub: subscriptionSchema.parse(JSON.parse(doc)), version: Number(version ?? '0') };
  } catch (err) {
    throw UnreadableRecordError.of('subscription', id, err);
  }
}

function eventsArg(events: readonly BillingEvent[]): string {
  // `data` travels as a JSON string: cjson would re-encode large integers (epoch ms) as floats.
  return JSON.stringify(
    events.map((e) => ({ id: e.id, type: e.type, at: String(e.at), data: JSON.stringify(e.data) })),
  );
}

export { SubscriptionContentionError };
export type { MutateResult, Versioned };

export class RedisSubscriptionStore implements SubscriptionStore {
  private readonly k: ReturnType<typeof subscriptionKeys>;
  readonly clocks: RedisTestClockStore;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.k = subscriptionKeys(prefix);
    this.clocks = new RedisTestClockStore(redis, this.k);
  }

  private saveArgs(
    sub: Subscription,
    expectVersion: number,
    events: readonly BillingEvent[],
  ): (string | number)[] {
    const score = dueScore(sub);
    const clock = sub.testClock;
    return [
      this.k.sub(sub.id),
      clock === undefined ? this.k.due() : this.k.clockDue(clock),
      this.k.all(),
      this.k.events(),
      clock === undefined ? this.k.all() : this.k.clockSubs(clock),
      this.k.foldedIds(),
      this.k.foldedIdsBuilt(),
      clock === undefined ? this.k.all() : this.k.clock(clock),
      this.k.byEmail(sub.customerEmail),
      this.k.byEmailIndexed(),
      sub.id,
      String(expectVersion),
      JSON.stringify(sub),
      score === null ? '' : String(score),
      eventsArg(events),
      String(EVENTS_MAX_LEN),
      clock === undefined ? '0' : '1',
      // Not a secret: only tells this call's own write from another's (SAVE_SUBSCRIPTION).
      nextCallId(),
      sub.id.toLowerCase(),
    ];
  }

  private async runSave(args: (string | number)[]): Promise<[number, string]> {
    const run = async () =>
      (await SAVE_SUBSCRIPTION.run(this.redis, SAVE_KEYS, ...args)) as [number, string];
    const res = await run();
    if (res[0] !== 3) return res;
    await this.ensureFoldedIds();
    return run();
  }

  /**
   * Builds the lower-case id index from every stored id (a deployment whose subscriptions
   * predate it), then marks it built; SAVE_SUBSCRIPTION asks for it before its first create.
   * Idempotent: HSETNX keeps what a create recorded meanwhile.
   */
  async ensureFoldedIds(): Promise<void> {
    const page = 1_000;
    for (let at = 0; ; at += page) {
      const ids = await this.redis.zrange(this.k.all(), String(at), String(at + page - 1));
      if (ids.length === 0) break;
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hsetnx(this.k.foldedIds(), id.toLowerCase(), id);
      for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
      if (ids.length < page) break;
    }
    await this.redis.set(this.k.foldedIdsBuilt(), '1');
  }

  /**
   * Per id, the stored subscription's id when it is this one in another case (ids are one id
   * ignoring case), else undefined.
   */
  async otherCaseOf(ids: readonly string[]): Promise<(string | undefined)[]> {
    if (ids.length === 0) return [];
    await this.ensureFoldedIdsOnce();
    const stored = await this.redis.hmget(this.k.foldedIds(), ...ids.map((id) => id.toLowerCase()));
    return ids.map((id, i) => {
      const other = stored[i];
      return other !== null && other !== undefined && other !== id ? other : undefined;
    });
  }

  private async ensureFoldedIdsOnce(): Promise<void> {
    if ((await this.redis.exists(this.k.foldedIdsBuilt())) === 0) await this.ensureFoldedIds();
  }

  /**
   * Stores `sub` if the stored version is still `expectVersion` (0: only if it does not exist),
   * with `events` appended in the same step. Returns the new version, or undefined on conflict.
   */
  async save(
    sub: Subscription,
    expectVersion: number,
    events: readonly BillingEvent[] = [],
  ): Promise<number | undefined> {
    const [ok, version] = await this.runSave(this.saveArgs(sub, expectVersion, events));
    return ok === 1 ? Number(version) : undefined;
  }

  /**
   * Many compare-and-set saves in one pipelined round trip (a tick's claims, a batch of payment
   * outcomes); per item, the new version or undefined on conflict. Each save is atomic on its
   * own; they are not atomic together.
   */
  async saveMany(
    items: readonly {
      sub: Subscription;
      expectVersion: number;
      events?: readonly BillingEvent[];
    }[],
  ): Promise<(number | undefined)[]> {
    if (items.length === 0) return [];
    const calls = items.map((it) => ({
      numKeys: SAVE_KEYS,
      args: this.saveArgs(it.sub, it.expectVersion, it.events ?? []),
    }));
    let res = await SAVE_SUBSCRIPTION.runPipelined(this.redis, calls);
    if (res.some(([err, value]) => !err && (value as [number, string])[0] === 3)) {
      // The lower-case id index is not built yet: built, then the creates that waited for it
      // run again (each refused one wrote nothing).
      await this.ensureFoldedIds();
      const again = res.flatMap(([err, value], i) =>
        !err && (value as [number, string])[0] === 3 ? [i] : [],
      );
      const rerun = await SAVE_SUBSCRIPTION.runPipelined(
        this.redis,
        again.map((i) => calls[i]!),
      );
      res = [...res];
      again.forEach((i, j) => (res[i] = rerun[j]!));
    }
    return res.map(([err, value], i) => {
      if (err) throw err;
      const [ok, version] = value as [number, string];
      if (ok === 4) throw new TestClockGoneError(items[i]!.sub.testClock ?? '');
      return ok === 1 ? Number(version) : undefined;
    });
  }

  /** Creates `sub` unless its id exists, with `events`; returns what is stored either way. */
  async create(
    sub: Subscription,
    events: readonly BillingEvent[] = [],
  ): Promise<{ created: boolean } & Versioned> {
    const [ok, value] = await this.runSave(this.saveArgs(sub, 0, events));
    if (ok === 1) return { created: true, sub, version: Number(value) };
    if (ok === 4) throw new TestClockGoneError(sub.testClock ?? '');
    // {2, other}: the id is a stored one in another case; that one is what is stored.
    const existing = await this.get(ok === 2 ? value : sub.id);
    if (!existing) throw new Error(`subscription ${sub.id} vanished after create`);
    return { created: false, ...existing };
  }

  /**
   * Creates many subscriptions in pipelined round trips (imports, benchmarks); returns, per
   * input, whether it was created (false: the id existed).
   */
  async createMany(
    subs: readonly Subscription[],
    eventsOf?: (sub: Subscription) => readonly BillingEvent[],
    chunk = 5_000,
  ): Promise<boolean[]> {
    const out: boolean[] = [];
    for (let i = 0; i < subs.length; i += chunk) {
      const saved = await this.saveMany(
        subs.slice(i, i + chunk).map((sub) => ({
          sub,
          expectVersion: 0,
          ...(eventsOf ? { events: eventsOf(sub) } : {}),
        })),
      );
      out.push(...saved.map((v) => v !== undefined));
    }
    return out;
  }

  async get(id: string): Promise<Versioned | undefined> {
    return readVersioned(this.redis, this.k.sub(id), (doc, v) => parse(id, doc, v));
  }

  /**
   * Reads several records in one round trip, in the order of `ids` (undefined when missing);
   * throws the UnreadableRecordError of the first one that does not parse.
   */
  async getMany(ids: readonly string[]): Promise<(Versioned | undefined)[]> {
    return (await this.readMany(ids)).map(readableOrThrow);
  }

  /**
   * As {@link getMany}, but a record that does not parse is its UnreadableRecordError in the
   * answer instead of failing the others: for loops over many records (the tick).
   */
  async readMany(
    ids: readonly string[],
  ): Promise<(Versioned | UnreadableRecordError | undefined)[]> {
    return readManyVersioned(
      this.redis,
      ids.map((id) => this.k.sub(id)),
      (doc, v, i) => unreadableInPlace(() => parse(ids[i]!, doc, v)),
    );
  }

  /**
   * Applies `decide` to the current record with compare-and-set, re-reading and re-deciding when
   * another writer got there first. `decide` returns the decision (`next` undefined: no change)
   * and a value for the caller.
   */
  async mutate<T>(
    id: string,
    decide: (sub: Subscription) => { decision: Pick<Decision, 'next' | 'events'>; value: T },
    maxTries = 8,
  ): Promise<MutateResult<T>> {
    for (let i = 0; i < maxTries; i++) {
      const current = await this.get(id);
      if (!current) return { found: false };
      const { decision, value } = decide(current.sub);
      if (!decision.next) {
        return { found: true, saved: false, sub: current.sub, version: current.version, value };
      }
      const version = await this.save(decision.next, current.version, decision.events);
      if (version !== undefined) {
        return { found: true, saved: true, sub: decision.next, version, value };
      }
    }
    throw new SubscriptionContentionError(id);
  }

  /**
   * Ids due at or before `now`, earliest first, in the deployment's due index or a test clock's.
   * Cost follows the due ones (ZRANGEBYSCORE).
   */
  dueIds(now: number, limit: number, testClock?: string): Promise<string[]> {
    const key = testClock === undefined ? this.k.due() : this.k.clockDue(testClock);
    return this.redis.zrangebyscore(key, '-inf', String(now), 'LIMIT', 0, limit);
  }

  /** How many subscriptions exist. */
  count(): Promise<number> {
    return this.redis.zcard(this.k.all());
  }

  /** Ids in lexicographic order, after `after` (exclusive). */
  async listIds(opts: {
    after?: string;
    limit: number;
    customerEmail?: string;
  }): Promise<string[]> {
    const min = opts.after === undefined ? '-' : `(${opts.after}`;
    if (opts.customerEmail === undefined)
      return this.redis.zrangebylex(this.k.all(), min, '+', 'LIMIT', 0, opts.limit);
    await this.ensureEmailIndex();
    return this.redis.zrangebylex(
      this.k.byEmail(opts.customerEmail),
      min,
      '+',
      'LIMIT',
      0,
      opts.limit,
    );
  }

  /**
   * Puts every stored subscription that is not in its email's index there: the ids of `subs:all`
   * missing from `subs:email:indexed` (subscriptions older than the index, or created by an older
   * version's process during a rolling upgrade). One round trip when nothing is missing (the two
   * sets' sizes); else the difference is stored aside and indexed 1,000 at a time. Idempotent and
   * safe to run concurrently: a create meanwhile indexes itself.
   */
  async ensureEmailIndex(): Promise<void> {
    const counts = await this.redis
      .multi()
      .zcard(this.k.all())
      .zcard(this.k.byEmailIndexed())
      .exec();
    const [all, indexed] = (counts ?? []).map(([err, v]) => {
      if (err) throw err;
      return v as number;
    });
    if (all === indexed) return;
    const missing = this.k.byEmailMissing(nextCallId());
    await this.redis
      .multi()
      .zdiffstore(missing, 2, this.k.all(), this.k.byEmailIndexed())
      .expire(missing, 600)
      .exec();
    try {
      for (;;) {
        const ids = await this.redis.zrange(missing, '0', '999');
        if (ids.length === 0) break;
        const found = await this.getMany(ids);
        const pipe = this.redis.pipeline();
        found.forEach((f, i) => {
          if (f) pipe.zadd(this.k.byEmail(f.sub.customerEmail), 0, f.sub.id);
          pipe.zadd(this.k.byEmailIndexed(), 0, ids[i]!);
        });
        pipe.zrem(missing, ...ids);
        for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
      }
    } finally {
      await this.redis.del(missing);
    }
  }

  /**
   * `billing keys reseal`: every subscription's sealed card token moved to the current key, each
   * record by a compare-and-set of its `doc` that also increments its `version`, so a save that
   * read the record before fails its own version check and reads it again (never writing the old
   * token back). Walks `subs:all`, 500 ids a round trip. Only the JSON is read (a record of
   * another version's shape is resealed, the rest of it kept): a doc that is not a JSON object is
   * counted in `unreadableRecords`, named, and left as it is.
   */
  async resealAll(reseal: Reseal): Promise<ResealCounts> {
    const counts = newResealCounts();
    for (let offset = 0; ; offset += 500) {
      const ids = await this.redis.zrange(this.k.all(), String(offset), String(offset + 499));
      if (ids.length === 0) break;
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hget(this.k.sub(id), 'doc');
      const docs = ((await pipe.exec()) ?? []).map(([err, v]) => {
        if (err) throw err;
        return v as string | null;
      });
      for (const [i, doc] of docs.entries()) {
        if (doc === null) continue;
        const record = readOrCount(counts, () => readJsonObject('subscription', ids[i]!, doc));
        if (typeof record?.cardTokenSealed !== 'string') continue;
        const moved = resealOne(reseal, record.cardTokenSealed, ids[i]!, counts);
        if (moved === undefined) continue;
        const next = JSON.stringify({ ...record, cardTokenSealed: moved });
        const key = this.k.sub(ids[i]!);
        const done =
          (await SET_FIELDS_IF.run(this.redis, 1, key, 'doc', doc, next, 'version')) === 1;
        if (done) counts.resealed++;
        else counts.changed++;
      }
    }
    return counts;
  }

  /** The subscription's charge intents, newest first (the intent store's index). */
  intentKeys(id: string, limit: number): Promise<string[]> {
    return this.redis.zrevrange(this.k.intents(id), 0, limit - 1);
  }
}
