/**
 * The deployment epoch: how a running service notices that Redis lost its data (restarted empty,
 * failed over to a replica that had not caught up, flushed by hand). The first process writes
 * `<prefix>:epoch` (a random id); every process remembers the id it saw and checks it every few
 * seconds and whenever its connection comes back. The record gone, or replaced by one that does not
 * descend from the remembered id, is a data loss: the record turns `lost`, the detecting process
 * publishes `alert.redis_data_lost` once, and every process reports not-ready until an operator
 * runs `billing redis ack-data-loss` (docs/operations.md, "Redis lost its data").
 *
 * A loss is seen by a process that was running across it, or, where the key groups live on
 * several cluster masters, by the next process to open the epoch: a group without a record next to
 * a group whose record is older than {@link FIRST_START_WINDOW_MS} lost it (its master restarted
 * empty while nothing ran). If every group is empty (every process restarts together with an empty
 * standalone Redis), the new epoch looks like a first deployment (the docs say so).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from './lua-script.ts';

export const epochKey = (prefix: string) => `${prefix}:epoch`;

/** The epoch record as stored. */
export interface EpochRecord {
  id: string;
  state: 'ok' | 'lost';
  createdAt: number;
  /** The epoch whose data was lost (set once a loss was detected). */
  lostId?: string;
  detectedAt?: number;
  acknowledgedAt?: number;
}

export const newEpochId = (): string => randomBytes(8).toString('hex');

/**
 * How long after the first group's record was written a group may still have none without that
 * being a loss: a process writes every group's record in one burst (milliseconds apart), and
 * processes of a first deployment start within seconds of each other. Past it, a group with no
 * record next to one that has is a group that lost its data.
 */
export const FIRST_START_WINDOW_MS = 60_000;

/**
 * Creates the record unless one exists; returns {id, state, detected}. ARGV[3] = '1' when another
 * group of the deployment has an established record: a missing record is then a loss, written
 * `lost` with `lostId` ARGV[4] (the deployment's epoch as that group holds it) and `detectedBy`
 * ARGV[1], so a second run of the same call (the client resends a command whose reply a dropped
 * connection lost) answers 'detected' again.
 */
export const OPEN = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[3] == '1' then
    redis.call('HSET', KEYS[1], 'id', ARGV[1], 'state', 'lost', 'createdAt', ARGV[2],
      'lostId', ARGV[4], 'detectedAt', ARGV[2], 'detectedBy', ARGV[1])
    return {ARGV[1], 'lost', 'detected'}
  end
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'state', 'ok', 'createdAt', ARGV[2])
end
local f = redis.call('HMGET', KEYS[1], 'id', 'state', 'detectedBy')
if f[3] == ARGV[1] then return {f[1], f[2] or 'lost', 'detected'} end
return {f[1], f[2] or 'ok', ''}
`);

/**
 * Compares the stored record with the remembered id (ARGV[1]). Returns {verdict, id, state}:
 * 'same' (nothing happened), 'adopt' (another process already recorded the loss of our epoch; we
 * take its record), 'detected' (this call recorded a loss: the record was gone — a new one is
 * written, state lost — or it does not descend from ours and is marked lost).
 * ARGV[2] is fresh per call and recorded (`detectedBy`) with a detection, so a second run of the
 * same call (the Redis client resends a command whose reply a dropped connection lost) answers
 * 'detected' again, not 'adopt': the caller publishes `alert.redis_data_lost` only on 'detected',
 * and with 'adopt' nobody would have.
 */
export const CHECK = new LuaScript(`
local cur = redis.call('HGET', KEYS[1], 'id')
if not cur then
  redis.call('HSET', KEYS[1], 'id', ARGV[2], 'state', 'lost', 'createdAt', ARGV[3],
    'lostId', ARGV[1], 'detectedAt', ARGV[3], 'detectedBy', ARGV[2])
  return {'detected', ARGV[2], 'lost'}
end
local f = redis.call('HMGET', KEYS[1], 'state', 'lostId', 'detectedBy')
if f[3] == ARGV[2] then return {'detected', cur, f[1] or 'lost'} end
if cur == ARGV[1] then return {'same', cur, f[1] or 'ok'} end
if f[2] == ARGV[1] then return {'adopt', cur, f[1] or 'ok'} end
redis.call('HSET', KEYS[1], 'state', 'lost', 'lostId', ARGV[1], 'detectedAt', ARGV[3],
  'detectedBy', ARGV[2])
redis.call('HDEL', KEYS[1], 'acknowledgedAt')
return {'detected', cur, 'lost'}
`);

/**
 * Turns a `lost` record `ok`. Returns 1 when it did, 0 when there was nothing to acknowledge.
 * ARGV[2] is fresh per call and recorded (`acknowledgedBy`): a second run of the same call answers
 * 1 again (not "nothing waited to be acknowledged").
 */
export const ACK = new LuaScript(`
local f = redis.call('HMGET', KEYS[1], 'state', 'acknowledgedBy')
if f[2] == ARGV[2] then return 1 end
if f[1] ~= 'lost' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ok', 'acknowledgedAt', ARGV[1], 'acknowledgedBy', ARGV[2])
return 1
`);

export type EpochVerdict =
  | { verdict: 'same' | 'adopt'; id: string; lost: boolean }
  | { verdict: 'detected'; id: string; lostId: string; lost: true };

/**
 * This process's view of the epoch. With several key groups (REDIS_SHARDS > 1, possibly on
 * different cluster masters) there is one record per group, since each master can lose its data
 * on its own; the verdicts combine (a loss in any group is a loss) and ids read `<id>,<id>,…`.
 */
export class DeploymentEpoch {
  private readonly prefixes: readonly string[];
  private ids: string[] | undefined;
  private lost = false;

  constructor(
    private readonly redis: Redis,
    prefix: string | readonly string[],
  ) {
    this.prefixes = typeof prefix === 'string' ? [prefix] : prefix;
    if (this.prefixes.length === 0) throw new RangeError('an epoch needs a prefix');
  }

  /**
   * Reads (or, in a Redis that has none, writes) the epoch and remembers it. With several key
   * groups, a group without a record while another group's record is older than
   * {@link FIRST_START_WINDOW_MS} lost its data while no process ran: its record is written `lost`
   * and `detected` names the epoch it belonged to (the caller reports it; see the class comment).
   */
  async open(now: number): Promise<{ id: string; lost: boolean; detected?: { lostId: string } }> {
    const before =
      this.prefixes.length > 1
        ? await Promise.all(
            this.prefixes.map((p) => this.redis.hmget(epochKey(p), 'id', 'createdAt')),
          )
        : [];
    const established = before.find(
      ([id, createdAt]) => id && Number(createdAt) <= now - FIRST_START_WINDOW_MS,
    );
    const lostId = established?.[0] ?? '';
    const opened = await Promise.all(
      this.prefixes.map(
        async (p) =>
          (await OPEN.run(
            this.redis,
            1,
            epochKey(p),
            newEpochId(),
            now,
            established ? 1 : 0,
            lostId,
          )) as [string, string, string],
      ),
    );
    this.ids = opened.map(([id]) => id);
    this.lost = opened.some(([, state]) => state === 'lost');
    const id = this.ids.join(',');
    return opened.some(([, , detected]) => detected === 'detected')
      ? { id, lost: true, detected: { lostId } }
      : { id, lost: this.lost };
  }

  /** Compares the stored epoch with the remembered one; see {@link CHECK}. Opens first if needed. */
  async check(now: number): Promise<EpochVerdict> {
    const mine = this.ids;
    if (mine === undefined) {
      const opened = await this.open(now);
      return { verdict: 'same', ...opened };
    }
    const seen = await Promise.all(
      this.prefixes.map(
        async (p, i) =>
          (await CHECK.run(this.redis, 1, epochKey(p), mine[i] ?? '', newEpochId(), now)) as [
            string,
            string,
            string,
          ],
      ),
    );
    this.ids = seen.map(([, id]) => id);
    this.lost = seen.some(([, , state]) => state === 'lost');
    const id = this.ids.join(',');
    const detected = seen.findIndex(([verdict]) => verdict === 'detected');
    if (detected >= 0) return { verdict: 'detected', id, lostId: mine[detected] ?? '', lost: true };
    const adopt = seen.some(([verdict]) => verdict === 'adopt');
    return { verdict: adopt ? 'adopt' : 'same', id, lost: this.lost };
  }

  /** True while the loss this process saw (or read) is not acknowledged. */
  isLost(): boolean {
    return this.lost;
  }

  current(): string | undefined {
    return this.ids?.join(',');
  }

  /** The stored record (for `billing redis status`): a lost group's, else the first group's. */
  async read(): Promise<EpochRecord | undefined> {
    const records = await Promise.all(this.prefixes.map((p) => readEpoch(this.redis, p)));
    return records.find((r) => r?.state === 'lost') ?? records[0];
  }

  /**
   * `billing redis ack-data-loss`: false when no loss was waiting. Every group's record is `ok`
   * afterwards, so this process stops reporting the loss at once; the others at their next check.
   */
  async acknowledge(now: number): Promise<boolean> {
    const acked = await Promise.all(
      this.prefixes.map((p) => acknowledgeDataLoss(this.redis, p, now)),
    );
    this.lost = false;
    return acked.some(Boolean);
  }
}

/** The stored record, or undefined when Redis has none. */
export async function readEpoch(redis: Redis, prefix: string): Promise<EpochRecord | undefined> {
  const h = await redis.hgetall(epochKey(prefix));
  if (!h.id) return undefined;
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const out: EpochRecord = {
    id: h.id,
    state: h.state === 'lost' ? 'lost' : 'ok',
    createdAt: Number(h.createdAt ?? 0),
  };
  if (h.lostId) out.lostId = h.lostId;
  const detectedAt = num(h.detectedAt);
  if (detectedAt !== undefined) out.detectedAt = detectedAt;
  const acknowledgedAt = num(h.acknowledgedAt);
  if (acknowledgedAt !== undefined) out.acknowledgedAt = acknowledgedAt;
  return out;
}

/** The operator's acknowledgement of a data loss; false when none was waiting. */
export async function acknowledgeDataLoss(
  redis: Redis,
  prefix: string,
  now: number,
): Promise<boolean> {
  return (await ACK.run(redis, 1, epochKey(prefix), now, newEpochId())) === 1;
}
