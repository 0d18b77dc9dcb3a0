/**
 * Lua scripts for atomic intent changes. Each one reads, checks and writes in a single Redis
 * step, so two workers, a webhook and a sweep racing on one intent cannot both win.
 *
 * The scripts format no identifiers: attempt references and event ids are derived in TypeScript
 * (kernel/ids.ts) and passed in as arguments.
 */
import { LuaScript } from '../../infra/redis/lua-script.ts';

/**
 * KEYS: hash, history, idx:state:queued, secondary index, created index, created index of the
 * type. ARGV: fields JSON, now, history JSON, key, secondary score, `1` when a Redis data loss is
 * unacknowledged (as this process last saw the epoch record, infra/redis/epoch.ts).
 *
 * Returns 0 when the intent exists, 1 when it was created, 2 when it was created with a data loss
 * unacknowledged: the intent is then marked `afterDataLoss = now`, since its reference may have
 * reached the gateway before the loss (payments/resubmission.ts `mayExistAtGateway`). The
 * process's view is passed in rather than the record read here: a read would be a Redis command
 * more per payment (issue 18's budget is 60), and the view lags the record only until the
 * platform watch's next check (5 s, or at once when the connection comes back).
 *
 * A call run twice: ioredis resends a command whose reply a dropped connection lost
 * (autoResendUnfulfilledCommands; the cluster client after a failover), so this script can run a
 * second time for one call, and the caller sees only the second reply. The fields carry the
 * intent's `incarnation`, random per call (intent-store.ts): an intent that exists with this
 * call's incarnation was created by this very call, and the second run answers as the first did
 * (1, or 2 with the same data-loss argument) and writes nothing. Before, it answered 0, and
 * `POST /payments` answered 200 (existing) for the payment it had just created. Only a create
 * that finds the intent existing reads it (one HGET), so the create path's command count is
 * unchanged.
 */
export const CREATE_INTENT = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  local mine = cjson.decode(ARGV[1])['incarnation']
  if mine and redis.call('HGET', KEYS[1], 'incarnation') == mine then
    if ARGV[6] == '1' then return 2 end
    return 1
  end
  return 0
end
local f = cjson.decode(ARGV[1])
local created = 1
if ARGV[6] == '1' then
  f['afterDataLoss'] = ARGV[2]
  created = 2
end
local flat = {}
for k, v in pairs(f) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[4])
redis.call('RPUSH', KEYS[2], ARGV[3])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4]) end
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[4])
return created
`);

/**
 * The events stream's approximate cap (XADD MAXLEN ~), a constant of the script: one argument
 * less per transition.
 */
export const EVENTS_MAX_LEN = 1_000_000;

/**
 * Every field an intent hash may hold (kernel/payment.ts Intent; intent-store.ts maps them): the
 * order of the values in a transition's read-back reply.
 */
export const INTENT_HASH_FIELDS = [
  'key',
  'type',
  'origin',
  'state',
  'amount',
  'currency',
  'attempt',
  'reference',
  'payee',
  'createdAt',
  'updatedAt',
  'reason',
  'message',
  'gatewayReference',
  'fee',
  'batchId',
  'subscriptionId',
  'line',
  'meta',
  'requestHash',
  'incarnation',
  'leaseUntil',
  'sentAt',
  'checks',
  'enqueues',
  'unsentResubmits',
  'seenAtGateway',
  'afterDataLoss',
  'claimLapsedAt',
  'authorizationUrl',
  'requiresActionUntil',
  'authorizationSealed',
] as const;

/** INTENT_HASH_FIELDS as the items of a Lua table literal. */
const HASH_FIELDS_LUA = INTENT_HASH_FIELDS.map((f) => `'${f}'`).join(', ');

/**
 * One intent transition, lean: one read (HMGET of what it decides on, or HGETALL when the reply
 * or the event needs the whole hash: both are built from that read and the writes, never read
 * again), one HSET of every field it writes (and one HDEL of those it clears), the indexes, the
 * history line, and the event only when the transition publishes one.
 *
 * With a rate limit (ARGV[12]), the transition also takes one token of the outbound gateway rate
 * limit (the submit claim): a fixed window of ARGV[13] ms counted at the last KEY, the same
 * counter rate-limiter-flexible keeps for lookups (rate-limited-gateway.ts), so claims and lookups
 * share one limit. It is taken only once every other check passed (a claim that is refused, stale
 * or missing takes none); over the limit nothing changes and the reply says how long the window
 * still runs.
 *
 * Keys and arguments are only what the transition can use (issue 18: ioredis building 19 keys and
 * 19 arguments per call showed in the worker's profile): of the state indexes, the target state's
 * and those of the states it may come from (one of which the intent is in, or it is refused), all
 * computed by the caller (on a cluster every key a script touches must be declared; they share
 * the prefix's hash tag).
 *
 * KEYS: 1 hash, 2 history, 3 leases, 4 reconcile due, 5 events, 6 the target state's index,
 * 7.. the index of each state named in ARGV[6], in that order, then (with a rate limit only) the
 * rate limit counter.
 * ARGV: 1 key, 2 to, 3 now, 4 allowed-from for charges ",a,b,", 5 allowed-from for payouts,
 * 6 the states of KEYS[7..] "s1,s2,…" (every state of 4 and 5), 7 expected attempt, and then,
 * each optional ('' or absent when not used): 8 read back '1', 9 patch JSON (value "" deletes the
 * field), 10 event type, 11 event id, 12 rate limit per window, 13 rate window ms, 14 reconcileAt,
 * 15 reason, 16 the new attempt's reference (a transition that opens a new attempt),
 * 17 unsent resubmit '1', 18 resolution JSON (history line and event), 19 the lease of the claim
 * the caller holds (refused as stale unless the intent is still `submitting` under that lease),
 * 20 never sent '1' (refused unless the current reference may not exist at the gateway: no
 * unsent resubmission, not seen by the gateway, not created after a data loss; the rule of
 * payments/resubmission.ts `mayExistAtGateway`, read here so that the check and the write are
 * one step), 21 this call's id (unique per call; stored with the from-state as `lastCall`).
 *
 * A call run twice: ioredis resends a command whose reply a dropped connection lost
 * (autoResendUnfulfilledCommands; the cluster client after a failover), so this script can run a
 * second time for one call, and the caller sees only the second reply. A hash whose `lastCall` is
 * this call's id was written by this very call: the second run answers `ok` with the first run's
 * from-state (and the read-back), and writes, counts and publishes nothing again. Without it, a
 * claim's second run answered `refused` (already submitting) and the worker waited out its own
 * lease.
 * Returns {'ok', from, value of each of INTENT_HASH_FIELDS or nil...} (read back: the values
 * only, half the strings of the hash's field/value pairs for ioredis to parse) | {'ok', from} |
 * {'missing'} |
 * {'refused'|'stale', state, attempt} | {'limited', state, attempt, ms until the window ends}.
 */
export const TRANSITION_INTENT = new LuaScript(`
local A = {}
for i = 1, 21 do A[i] = ARGV[i] or '' end
local h = KEYS[1]
local from, itype, attempt, cur
-- The reply of a transition made from state f, with the read-back when asked for (ARGV[8]).
local function answer(f)
  if A[8] ~= '1' then return {'ok', f} end
  local out = {'ok', f}
  local fields = {${HASH_FIELDS_LUA}}
  for i = 1, #fields do out[i + 2] = cur[fields[i]] or false end
  return out
end
local full = A[8] == '1' or A[10] ~= ''
if full then
  -- The whole hash in one read: the reply and the event are built from it and the writes below.
  local flat = redis.call('HGETALL', h)
  cur = {}
  for i = 1, #flat, 2 do cur[flat[i]] = flat[i + 1] end
else
  local f = redis.call('HMGET', h, 'state', 'type', 'attempt', 'unsentResubmits', 'enqueues', 'leaseUntil',
    'lastCall')
  cur = { state = f[1] or nil, type = f[2] or nil, attempt = f[3] or nil,
    unsentResubmits = f[4] or nil, enqueues = f[5] or nil, leaseUntil = f[6] or nil, lastCall = f[7] or nil }
end
from, itype, attempt = cur.state, cur.type, tonumber(cur.attempt)
if not from then return {'missing'} end
local done = nil
if A[21] ~= '' and cur.lastCall then
  local mark = A[21] .. '>'
  if string.sub(cur.lastCall, 1, #mark) == mark then done = string.sub(cur.lastCall, #mark + 1) end
end
-- This very call, run again: answered as the first run was, nothing written twice.
if done then return answer(done) end
if A[7] ~= '' and tonumber(A[7]) ~= attempt then return {'stale', from, tostring(attempt)} end
-- A transition made for a claim lands only while the intent is still submitting under that claim.
-- Otherwise the claim is over: its lease ran out and the intent moved on (unknown, re-queued,
-- claimed again, answered: pending, requires_action...), whatever state it is in now. The hash's
-- leaseUntil outlives the claim, so the state is checked, not only the lease.
if A[19] ~= '' and (from ~= 'submitting' or cur.leaseUntil ~= A[19]) then
  return {'stale', from, tostring(attempt)}
end
local allowed = A[4]
if itype == 'payout' then allowed = A[5] end
if not string.find(allowed, ',' .. from .. ',', 1, true) then return {'refused', from, tostring(attempt)} end
if A[20] == '1' then
  local m = redis.call('HMGET', h, 'seenAtGateway', 'afterDataLoss')
  if tonumber(cur.unsentResubmits or '0') > 0 or m[1] or m[2] then
    return {'refused', from, tostring(attempt)}
  end
end

if A[12] ~= '' then
  local rk = KEYS[#KEYS]
  local used = redis.call('INCR', rk)
  if used == 1 then redis.call('PEXPIRE', rk, A[13]) end
  if used > tonumber(A[12]) then
    redis.call('DECR', rk)
    local ttl = redis.call('PTTL', rk)
    if ttl < 0 then redis.call('PEXPIRE', rk, A[13]); ttl = tonumber(A[13]) end
    return {'limited', from, tostring(attempt), tostring(ttl)}
  end
end

local to, now, key = A[2], A[3], A[1]
local set, del = {}, {}
local unsent = tonumber(cur.unsentResubmits or '0')
if A[16] ~= '' then
  attempt = attempt + 1
  unsent = 0
  set.attempt = tostring(attempt); set.reference = A[16]; set.checks = '0'; set.unsentResubmits = '0'
  for _, k in ipairs({'reason', 'message', 'gatewayReference', 'fee', 'sentAt', 'seenAtGateway',
    'authorizationUrl', 'requiresActionUntil'}) do del[k] = true end
end
if A[17] == '1' then set.unsentResubmits = tostring(unsent + 1) end
if to == 'queued' then set.enqueues = tostring(tonumber(cur.enqueues or '0') + 1) end
if A[9] ~= '' then
  for k, v in pairs(cjson.decode(A[9])) do
    if v == '' then set[k] = nil; del[k] = true else set[k] = v; del[k] = nil end
  end
end
-- The hash's leaseUntil counts only while the intent is submitting (the store reads it so):
-- leaving submitting removes the lease entry but leaves the field, one HDEL less per payment.
if to == 'submitting' then
  local lease = set.leaseUntil
  if not lease and from == 'submitting' then lease = cur.leaseUntil end
  if not lease then lease = now; del.leaseUntil = true end
  redis.call('ZADD', KEYS[3], lease, key)
elseif from == 'submitting' or set.leaseUntil then
  redis.call('ZREM', KEYS[3], key)
  set.leaseUntil = nil
end
set.state = to; set.updatedAt = now
if A[21] ~= '' then set.lastCall = A[21] .. '>' .. from end
local flat = {}
for k, v in pairs(set) do flat[#flat + 1] = k; flat[#flat + 1] = v; cur[k] = v end
redis.call('HSET', h, unpack(flat))
local gone = {}
for k in pairs(del) do gone[#gone + 1] = k; cur[k] = nil end
if #gone > 0 then redis.call('HDEL', h, unpack(gone)) end

if from ~= to then
  local i, fromIdx = 7, nil
  for s in string.gmatch(A[6], '[^,]+') do
    if s == from then fromIdx = KEYS[i] end
    i = i + 1
  end
  redis.call('ZREM', fromIdx, key)
  redis.call('ZADD', KEYS[6], now, key)
end
if A[14] ~= '' then
  redis.call('ZADD', KEYS[4], A[14], key)
elseif from ~= 'queued' and from ~= 'submitting' then
  -- Entering queued or submitting always clears the entry, and nothing checks either state.
  redis.call('ZREM', KEYS[4], key)
end

local resolution = nil
if A[18] ~= '' then resolution = cjson.decode(A[18]) end
redis.call('RPUSH', KEYS[2], cjson.encode({ at = tonumber(now), from = from, to = to, attempt = attempt,
  reason = A[15] ~= '' and A[15] or nil, resolution = resolution }))

if A[10] ~= '' then
  local data = { key = key, state = to, attempt = attempt, type = cur.type, amount = tonumber(cur.amount),
    currency = cur.currency, reference = cur.reference, reason = cur.reason, message = cur.message,
    fee = cur.fee and tonumber(cur.fee) or nil, gatewayReference = cur.gatewayReference,
    batchId = cur.batchId, subscriptionId = cur.subscriptionId, origin = cur.origin,
    line = cur.line and tonumber(cur.line) or nil }
  if to == 'requires_action' then
    data.authorizationUrl = cur.authorizationUrl
    data.requiresActionUntil = cur.requiresActionUntil and tonumber(cur.requiresActionUntil) or nil
  end
  -- Whether a reusable card authorization is stored (never the authorization itself).
  if cur.type == 'charge' then data.hasAuthorization = cur.authorizationSealed ~= nil end
  data.resolution = resolution
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', '${EVENTS_MAX_LEN}', '*', 'id', A[11], 'type', A[10],
    'at', now, 'data', cjson.encode(data))
end
return answer(from)
`);

/**
 * Records a reconcile check without changing state, only if the intent is still in the expected
 * state, attempt and check count (so of two concurrent checkers only one advances the schedule).
 * KEYS: hash, reconcile due. ARGV: key, expected state, expected attempt, new checks, next check
 * at ('' removes it from the due set), expected checks, this call's id (unique per call; stored
 * as `lastCheck`). Returns 1 when recorded, 0 when something else moved the intent meanwhile.
 *
 * A call run twice (a resend after a lost reply, as for TRANSITION_INTENT): the second run finds
 * the count already advanced, by this very call. A hash whose `lastCheck` is this call's id was
 * written by it: the second run answers 1, as the first did, and writes nothing again. Before, it
 * answered 0 and the checker never enqueued the next scheduled check (the payment waited for the
 * sweep). Recognising the write by its values instead (state and attempt as expected, the count
 * at the new one, the due score at this call's) would need no field, but can be wrong: two
 * checkers of the same count that computed the same next time (a scheduled check and the sweep's
 * in one millisecond), or a call that removes the due entry, would both answer 1 and both
 * schedule. The id costs a short field on the hash of an intent that is checked, no command.
 */
export const RECORD_CHECK = new LuaScript(`
local f = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'checks', 'lastCheck')
if f[4] and f[4] == ARGV[7] then return 1 end
if f[1] ~= ARGV[2] or f[2] ~= ARGV[3] or (f[3] or '0') ~= ARGV[6] then return 0 end
redis.call('HSET', KEYS[1], 'checks', ARGV[4], 'lastCheck', ARGV[7])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1]) else redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1
`);

/**
 * Records that the gateway showed the current attempt's reference exists, once, only if the intent
 * is still on the expected attempt.
 * KEYS: hash. ARGV: expected attempt, at. Returns 1 when recorded.
 */
export const MARK_SEEN = new LuaScript(`
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then return 0 end
return redis.call('HSETNX', KEYS[1], 'seenAtGateway', ARGV[2])
`);

/**
 * Creates many intents of one batch in one call, with the intent store's layout: per intent what
 * its CREATE_INTENT does (the hash unless it exists, the `queued` state index scored `now`, the
 * first history line, the batch index scored by line), without a script call per intent. Fields
 * every batch intent shares are written here; the client sends only what differs per row.
 * An intent that exists is left untouched and its state, attempt, queue entries and reference are
 * returned, so a resumed ingest enqueues only what still waits.
 * KEYS: 1 queued-state index, 2 batch index, 3 created index, 4 created index of the type, then
 * per intent: hash, history.
 * ARGV: 1 now, 2 history entry JSON, 3 batch id, 4 intent type, 5 intent count n, 6 `1` when a
 * Redis data loss is unacknowledged ('' otherwise), then per intent: key, line, amount (minor
 * units), currency, payee JSON, meta JSON or '', first attempt's reference, incarnation.
 * Returns per intent 1 (created) or {0, state, attempt, enqueues, reference, incarnation}.
 *
 * Like CREATE_INTENT, an intent created while a Redis data loss is unacknowledged (ARGV[6] `1`, the
 * process's view) is marked `afterDataLoss = now`: a batch re-posted after the loss derives the
 * same references, which the lost store may have sent (payments/resubmission.ts
 * `mayExistAtGateway`). An intent that exists keeps what it has.
 */
export const CREATE_BATCH_INTENTS = new LuaScript(`
local now, hist, bid, itype, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local lost = ARGV[6] == '1'
local out = {}
for i = 1, n do
  local h, hk = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local a = 7 + (i - 1) * 8
  local key, line = ARGV[a], ARGV[a + 1]
  if redis.call('EXISTS', h) == 1 then
    local f = redis.call('HMGET', h, 'state', 'attempt', 'enqueues', 'reference', 'incarnation')
    out[i] = { 0, f[1] or '', f[2] or '', f[3] or '', f[4] or '', f[5] or '' }
  else
    redis.call('HSET', h, 'key', key, 'type', itype, 'origin', 'batch', 'state', 'queued',
      'amount', ARGV[a + 2], 'currency', ARGV[a + 3], 'attempt', '1', 'reference', ARGV[a + 6],
      'payee', ARGV[a + 4], 'createdAt', now, 'updatedAt', now, 'checks', '0', 'enqueues', '1',
      'unsentResubmits', '0', 'batchId', bid, 'line', line, 'incarnation', ARGV[a + 7])
    if ARGV[a + 5] ~= '' then redis.call('HSET', h, 'meta', ARGV[a + 5]) end
    if lost then redis.call('HSET', h, 'afterDataLoss', now) end
    redis.call('ZADD', KEYS[1], now, key)
    redis.call('RPUSH', hk, hist)
    redis.call('ZADD', KEYS[2], line, key)
    redis.call('ZADD', KEYS[3], now, key)
    redis.call('ZADD', KEYS[4], now, key)
    out[i] = 1
  end
end
return out
`);
