/**
 * Lua scripts of refunds (docs/refunds.md), apart from the intent scripts of intent-lua.ts: the
 * reservation of an amount against a charge and the charge's one-in-flight slot. A refund, once
 * created, is an intent like any other: its transitions go through TRANSITION_INTENT.
 *
 * Like the intent scripts, these format no identifiers: the refund's key, reference and fields
 * are derived in TypeScript (kernel/ids.ts) and handed in.
 */
import { LuaScript } from '../../infra/redis/lua-script.ts';

/**
 * Creates refund n of a charge, in the intent store's layout, if and only if the charge is a
 * `succeeded` charge and what it charged, less every refund of it that is not `failed`, covers the
 * amount. Read, check and write are one step, so concurrent requests can never reserve more than
 * the charge between them.
 *
 * KEYS: 1 charge hash, 2 the charge's refunds (zset, score n), 3 the charge's caller keys (hash
 * caller key → refund key), 4 the new refund's hash, 5 its history, 6 idx:state:queued,
 * 7 created index, 8 created index of refunds, 9.. the hashes of the charge's refunds 1..n-1.
 * ARGV: 1 refund key, 2 n, 3 fields JSON (all but amount and currency), 4 amount in minor units or
 * '' (all that is left), 5 now, 6 first history line JSON, 7 caller key or '', 8 max refunds,
 * 9 `1` when a Redis data loss is unacknowledged (as this process last saw it): the refund is then
 * marked `afterDataLoss = now`, as CREATE_INTENT marks an intent, since refund n of a charge has
 * the same key and reference it had before the loss, and the lost store may have sent it.
 * 10 this call's `incarnation` (also in the fields): a refund n that already carries it was
 * created by this very call, run again — ioredis resends a command whose reply a dropped
 * connection lost — and is answered as the first run was, never with `retry` (which would make
 * the caller reserve refund n+1: a second refund for one request).
 * Returns {'created', amount} | {'existing', refund key} | {'not_found'} |
 * {'not_refundable', type, state} | {'exceeds', charged, reserved, requested} | {'too_many'} |
 * {'retry'} (another refund was created since the caller read the list: read it again).
 */
export const RESERVE_REFUND = new LuaScript(`
local c = redis.call('HMGET', KEYS[1], 'type', 'state', 'amount', 'currency')
if not c[1] then return {'not_found'} end
if redis.call('HGET', KEYS[4], 'incarnation') == ARGV[10] then
  return {'created', redis.call('HGET', KEYS[4], 'amount')}
end
if ARGV[7] ~= '' then
  local existing = redis.call('HGET', KEYS[3], ARGV[7])
  if existing then return {'existing', existing} end
end
if c[1] ~= 'charge' or c[2] ~= 'succeeded' then return {'not_refundable', c[1], c[2]} end
local n = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[2]) ~= n - 1 then return {'retry'} end
if n > tonumber(ARGV[8]) then return {'too_many'} end
local charged = tonumber(c[3])
local reserved = 0
for i = 9, #KEYS do
  local r = redis.call('HMGET', KEYS[i], 'state', 'amount')
  if r[1] and r[1] ~= 'failed' then reserved = reserved + tonumber(r[2]) end
end
local left = charged - reserved
local want = left
if ARGV[4] ~= '' then want = tonumber(ARGV[4]) end
if want <= 0 or want > left then
  return {'exceeds', tostring(charged), tostring(reserved), tostring(want)}
end
local f = cjson.decode(ARGV[3])
local flat = {}
for k, v in pairs(f) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('HSET', KEYS[4], unpack(flat))
redis.call('HSET', KEYS[4], 'amount', tostring(want), 'currency', c[4])
if ARGV[9] == '1' then redis.call('HSET', KEYS[4], 'afterDataLoss', ARGV[5]) end
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[1])
redis.call('RPUSH', KEYS[5], ARGV[6])
redis.call('ZADD', KEYS[7], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[8], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[2], n, ARGV[1])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[3], ARGV[7], ARGV[1]) end
return {'created', tostring(want)}
`);

/**
 * Takes a charge's refund slot: at most one refund of a charge is at the gateway at a time, so a
 * lookup that lists the transaction's refunds can tell which one is ours (docs/refunds.md). The
 * slot is free when nobody holds it or its holder is final (`succeeded`, `failed`).
 * KEYS: 1 the slot, 2 the holder's hash as the caller read it (any key when there is none).
 * ARGV: 1 the refund key asking, 2 the holder the caller read ('' for none).
 * Returns {'ok'} | {'busy', holder, state} | {'retry'} (the holder changed since it was read).
 */
export const TAKE_REFUND_SLOT = new LuaScript(`
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[2] then return {'retry'} end
if cur and cur ~= ARGV[1] then
  local st = redis.call('HGET', KEYS[2], 'state')
  if st and st ~= 'succeeded' and st ~= 'failed' then return {'busy', cur, st} end
end
redis.call('SET', KEYS[1], ARGV[1])
return {'ok'}
`);
