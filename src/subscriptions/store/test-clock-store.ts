/**
 * Test clocks in Redis (subscriptions/test-clocks.ts), under the deployment's prefix:
 * `<prefix>:clock:<id>` is a hash with the clock as JSON (`doc`) and a `version`;
 * `<prefix>:clocks:advancing` holds the ids of the clocks advancing now (so a tick can restart a
 * chain of steps whose next job was lost); `<prefix>:clock:<id>:subs` the ids of its
 * subscriptions (written by the subscription store, in the step that creates one). Every write
 * is a compare-and-set on the version. Implements the TestClockStore port.
 */
import type { Redis } from 'ioredis';
import { readableOrThrow, unreadableInPlace, UnreadableRecordError } from '../../kernel/errors.ts';
import type { TestClockStore, VersionedClock } from '../ports.ts';
import { testClockSchema, type TestClock } from '../test-clocks.ts';
import { nextCallId } from '../../infra/redis/call-id.ts';
import { LuaScript } from '../../infra/redis/lua-script.ts';
import { readManyVersioned, readVersioned } from './versioned-docs.ts';

/** The keys this store uses (subscription-store.ts `subscriptionKeys` has them all). */
export interface ClockKeys {
  clock: (id: string) => string;
  clockSubs: (id: string) => string;
  clockDue: (id: string) => string;
  advancingClocks: () => string;
}

/**
 * KEYS: 1 clock hash, 2 advancing set. ARGV: 1 id, 2 expected version ('0': must not exist),
 * 3 clock JSON, 4 '1' when advancing, 5 this call's id (unique per call), stored as `lastSave`.
 * Returns {1, new version} or {0, current version}.
 *
 * A call run twice (the Redis client resends a command whose reply a dropped connection lost; as
 * SAVE_SUBSCRIPTION): a clock whose `lastSave` is this call's id was written by this very call,
 * and the second run answers as the first did — {1, its version} — and writes nothing again.
 * Before, it answered a conflict: a create made a second clock under a new id and returned that
 * one, the first left behind with nobody knowing its id; an advance answered "already advancing"
 * (409) and its first step was never enqueued (the clock waited for the deployment's tick).
 */
export const SAVE_CLOCK = new LuaScript(`
local cur = redis.call('HMGET', KEYS[1], 'version', 'lastSave')
local v = cur[1]
if v and cur[2] == ARGV[5] then return {1, v} end
if ARGV[2] == '0' then
  if v then return {0, v} end
elseif v ~= ARGV[2] then
  return {0, v or '0'}
end
local nv = tostring((tonumber(v) or 0) + 1)
redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'version', nv, 'lastSave', ARGV[5])
if ARGV[4] == '1' then redis.call('ZADD', KEYS[2], 0, ARGV[1]) else redis.call('ZREM', KEYS[2], ARGV[1]) end
return {1, nv}
`);

/**
 * KEYS: 1 clock hash, 2 its members, 3 its due index, 4 advancing set. ARGV: 1 id, 2 expected
 * version, 3 expected member count. Deletes the clock and its indexes if it is at that version
 * with that many members (a subscription created since, or an advance started, is `changed`).
 * Returns 1 deleted, 0 changed, 2 no such clock (also what a resent call finds after the first).
 */
export const REMOVE_CLOCK = new LuaScript(`
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return 2 end
if v ~= ARGV[2] then return 0 end
if redis.call('ZCARD', KEYS[2]) ~= tonumber(ARGV[3]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
`);

/** Clock `id` from its stored hash; UnreadableRecordError when it does not parse. */
function parse(
  id: string,
  doc: string | null | undefined,
  version: string | null | undefined,
): VersionedClock | undefined {
  if (doc === null || doc === undefined) return undefined;
  try {
    return { clock: testClockSchema.parse(JSON.parse(doc)), version: Number(version ?? '0') };
  } catch (err) {
    throw UnreadableRecordError.of('test clock', id, err);
  }
}

export class RedisTestClockStore implements TestClockStore {
  constructor(
    private readonly redis: Redis,
    private readonly k: ClockKeys,
  ) {}

  async save(clock: TestClock, expectVersion: number): Promise<number | undefined> {
    const [ok, version] = (await SAVE_CLOCK.run(
      this.redis,
      2,
      this.k.clock(clock.id),
      this.k.advancingClocks(),
      clock.id,
      String(expectVersion),
      JSON.stringify(clock),
      clock.status === 'advancing' ? '1' : '0',
      nextCallId(),
    )) as [number, string];
    return ok === 1 ? Number(version) : undefined;
  }

  async create(clock: TestClock): Promise<boolean> {
    return (await this.save(clock, 0)) !== undefined;
  }

  async get(id: string): Promise<VersionedClock | undefined> {
    return readVersioned(this.redis, this.k.clock(id), (doc, v) => parse(id, doc, v));
  }

  /** @inheritdoc */
  async getMany(ids: readonly string[]): Promise<(VersionedClock | undefined)[]> {
    return (await this.readMany(ids)).map(readableOrThrow);
  }

  /** @inheritdoc */
  async readMany(
    ids: readonly string[],
  ): Promise<(VersionedClock | UnreadableRecordError | undefined)[]> {
    return readManyVersioned(
      this.redis,
      ids.map((id) => this.k.clock(id)),
      (doc, v, i) => unreadableInPlace(() => parse(ids[i]!, doc, v)),
    );
  }

  advancing(limit: number): Promise<string[]> {
    return this.redis.zrange(this.k.advancingClocks(), '0', String(limit - 1));
  }

  members(id: string): Promise<string[]> {
    return this.redis.zrange(this.k.clockSubs(id), '0', '-1');
  }

  async remove(
    id: string,
    expectVersion: number,
    memberCount: number,
  ): Promise<'deleted' | 'changed' | 'gone'> {
    const r = (await REMOVE_CLOCK.run(
      this.redis,
      4,
      this.k.clock(id),
      this.k.clockSubs(id),
      this.k.clockDue(id),
      this.k.advancingClocks(),
      id,
      String(expectVersion),
      String(memberCount),
    )) as number;
    return r === 1 ? 'deleted' : r === 2 ? 'gone' : 'changed';
  }
}
