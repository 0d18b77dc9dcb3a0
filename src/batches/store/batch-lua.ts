/**
 * Lua scripts for batch records. Each one reads, checks and writes in one Redis step, so two
 * uploads of the same file, a crashed ingester and its successor, and several batch trackers can
 * race without double-counting a row or publishing `batch.completed` twice.
 *
 * Batch hash fields: `id type state source contentHash rows valid invalid expected skipInvalid
 * allowReusedReferences metaKeys totals createdAt ingestedAt finishedAt owner leaseUntil final`,
 * plus one counter per tracked intent state (`n:<state>`), one money total per tracked state and
 * currency (`a:<state>:<currency>`, minor units), and the rows and money per currency of rows
 * refused while they were enqueued — a reference another batch holds, or an intent key another
 * batch's row holds — (`refused:rows:<currency>`, `refused:amount:<currency>`; `totals` is as
 * validated, the reader subtracts them). `expected` is
 * the number of rows that became intents; `final` how many of them reached a state that is final
 * for the batch.
 */
import { SETTLED_STATES } from '../../kernel/intent.ts';
import { LuaScript } from '../../infra/redis/lua-script.ts';
import { TRACKED_STATES } from '../ports.ts';

/** The states final for a batch row ({@link SETTLED_STATES}), as a Lua set. */
const FINAL_SET = `{ ${SETTLED_STATES.map((s) => `${s} = true`).join(', ')} }`;

/** The states a batch counts ({@link TRACKED_STATES}), as a Lua set. */
const TRACKED_SET = `{ ${TRACKED_STATES.map((s) => `${s} = true`).join(', ')} }`;

/**
 * Shared by the finish-ingest and apply-events scripts: completes a `queued` batch whose rows are
 * all final, atomically with the one `batch.completed` event. `qidx`/`cidx` are the KEYS indexes
 * of the queued and completed state indexes, `ev` the events stream's.
 */
const MAYBE_COMPLETE = `
local function maybe_complete(bh, id, now, qidx, cidx, ev, maxlen)
  local h = redis.call('HMGET', bh, 'state', 'expected', 'final', 'createdAt')
  if h[1] ~= 'queued' then return h[1] or '' end
  if tonumber(h[3] or '0') < tonumber(h[2] or '0') then return 'queued' end
  redis.call('HSET', bh, 'state', 'completed', 'finishedAt', now)
  redis.call('ZREM', KEYS[qidx], id)
  redis.call('ZADD', KEYS[cidx], h[4] or now, id)
  local all = redis.call('HGETALL', bh)
  local data = { batchId = id, counts = {} }
  -- Money totals are written into the JSON as the exact integers HINCRBY kept: cjson writes a
  -- number with 14 significant digits, so a total from 10^14 minor units on came out rounded.
  local amounts, order = {}, {}
  for i = 1, #all, 2 do
    local k, v = all[i], all[i + 1]
    if string.sub(k, 1, 2) == 'n:' then
      data.counts[string.sub(k, 3)] = tonumber(v)
    elseif string.sub(k, 1, 2) == 'a:' then
      local st, cur = string.match(k, '^a:([^:]+):(.+)$')
      if st and string.match(v, '^%-?%d+$') then
        if not amounts[st] then amounts[st] = {}; order[#order + 1] = st end
        amounts[st][#amounts[st] + 1] = cjson.encode(cur) .. ':' .. v
      end
    elseif k == 'type' or k == 'source' then
      data[k] = v
    elseif k == 'rows' or k == 'valid' or k == 'invalid' or k == 'createdAt' then
      data[k] = tonumber(v)
    end
  end
  data.finishedAt = tonumber(now)
  local parts = {}
  for _, st in ipairs(order) do
    parts[#parts + 1] = cjson.encode(st) .. ':{' .. table.concat(amounts[st], ',') .. '}'
  end
  local json = cjson.encode(data)
  json = string.sub(json, 1, -2) .. ',"amounts":{' .. table.concat(parts, ',') .. '}}'
  redis.call('XADD', KEYS[ev], 'MAXLEN', '~', maxlen, '*', 'id', 'evt_batch_' .. id .. '_completed',
    'type', 'batch.completed', 'at', now, 'data', json)
  return 'completed'
end
`;

/**
 * Shared by the scripts that refuse a row while it is enqueued (CLAIM_REFERENCES, REFUSE_ROWS):
 * records it as an invalid row and takes it out of the batch's valid rows, expected rows and
 * money, once per line (a line already recorded changes nothing; false then). `shown` is a JSON
 * object of what the results file shows of the row (`{}`, or its `reference` and `meta`), whose
 * fields join the invalid row's.
 */
const REFUSE_ROW = `
local function refuse_row(bh, inv, line, amount, cur, msg, shown)
  if #redis.call('ZRANGEBYSCORE', inv, line, line, 'LIMIT', 0, 1) > 0 then return false end
  local rest = '}'
  if shown ~= '{}' then rest = ',' .. string.sub(shown, 2) end
  redis.call('ZADD', inv, line, '{"line":' .. line .. ',"message":' .. cjson.encode(msg) .. rest)
  redis.call('HINCRBY', bh, 'valid', -1)
  redis.call('HINCRBY', bh, 'expected', -1)
  redis.call('HINCRBY', bh, 'invalid', 1)
  redis.call('HINCRBY', bh, 'refused:rows:' .. cur, 1)
  redis.call('HINCRBY', bh, 'refused:amount:' .. cur, amount)
  return true
end
`;

/**
 * Claims a batch id: creates the record in `ingesting` unless it exists, and indexes it by
 * creation time (the list of every batch) in the same step.
 * KEYS: 1 batch hash, 2 ingesting index, 3 created index. ARGV: 1 fields JSON, 2 id, 3 createdAt,
 * 4 the caller's owner (random per call, also in the fields): a record this very call created,
 * run again (the Redis client resends a command whose reply a dropped connection lost), is
 * answered 'created' as the first run was — as 'exists' the caller took its own fresh claim for
 * another's and waited out its lease, the batch left `ingesting` with no rows meanwhile.
 * Returns {'created'} or {'exists', hash...}.
 */
export const CLAIM_BATCH = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'owner') == ARGV[4] then return {'created'} end
  local out = redis.call('HGETALL', KEYS[1])
  table.insert(out, 1, 'exists')
  return out
end
local f = cjson.decode(ARGV[1])
local flat = {}
for k, v in pairs(f) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return {'created'}
`);

/**
 * Takes over an ingest whose owner stopped renewing its lease (crashed or hung).
 * KEYS: 1 batch hash. ARGV: 1 new owner, 2 now, 3 new lease end. Returns 1 when taken (or when
 * this owner, random per caller, already holds it: a second run of the same call).
 */
export const TAKE_OVER_INGEST = new LuaScript(`
local s = redis.call('HMGET', KEYS[1], 'state', 'leaseUntil', 'owner')
if s[1] ~= 'ingesting' then return 0 end
if s[3] == ARGV[1] then return 1 end
if tonumber(s[2] or '0') >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'leaseUntil', ARGV[3])
return 1
`);

/**
 * Renews the ingest lease while its owner still holds it.
 * KEYS: 1 batch hash. ARGV: 1 owner, 2 new lease end. Returns 1 when renewed.
 */
export const RENEW_INGEST = new LuaScript(`
local s = redis.call('HMGET', KEYS[1], 'state', 'owner')
if s[1] ~= 'ingesting' or s[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'leaseUntil', ARGV[2])
return 1
`);

/**
 * Ends the ingest: `ingesting → queued`, and straight on to `completed` when every row is already
 * final (events can overtake the ingest); a batch held for approval (`holdForApproval`) goes to
 * `awaiting_approval` instead. Idempotent: a second call returns the current state.
 * KEYS: 1 batch hash, 2 ingesting index, 3 queued index, 4 completed index, 5 events,
 * 6 awaiting_approval index. ARGV: 1 id, 2 now, 3 events max length. Returns the state after.
 */
export const FINISH_INGEST = new LuaScript(`${MAYBE_COMPLETE}
local bh = KEYS[1]
local h = redis.call('HMGET', bh, 'state', 'createdAt', 'holdForApproval')
if h[1] ~= 'ingesting' then return h[1] or '' end
redis.call('HDEL', bh, 'owner', 'leaseUntil')
redis.call('ZREM', KEYS[2], ARGV[1])
if h[3] == '1' then
  redis.call('HSET', bh, 'state', 'awaiting_approval', 'ingestedAt', ARGV[2])
  redis.call('ZADD', KEYS[6], h[2] or ARGV[2], ARGV[1])
  return 'awaiting_approval'
end
redis.call('HSET', bh, 'state', 'queued', 'ingestedAt', ARGV[2])
redis.call('ZADD', KEYS[3], h[2] or ARGV[2], ARGV[1])
return maybe_complete(bh, ARGV[1], ARGV[2], 3, 4, 5, ARGV[3])
`);

/**
 * Ends the release of a held batch (approved, or canceled while awaiting approval):
 * `awaiting_approval → queued`, or `completed` when every row is final. Only once it was
 * approved or canceled; idempotent.
 * KEYS: 1 batch hash, 2 awaiting_approval index, 3 queued index, 4 completed index, 5 events.
 * ARGV: 1 id, 2 now, 3 events max length. Returns the state after the call.
 */
export const FINISH_RELEASE = new LuaScript(`${MAYBE_COMPLETE}
local bh = KEYS[1]
local h = redis.call('HMGET', bh, 'state', 'createdAt', 'approvedAt', 'canceledAt')
if h[1] ~= 'awaiting_approval' or (not h[3] and not h[4]) then return h[1] or '' end
redis.call('HSET', bh, 'state', 'queued')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], h[2] or ARGV[2], ARGV[1])
return maybe_complete(bh, ARGV[1], ARGV[2], 3, 4, 5, ARGV[3])
`);

/**
 * Approves a batch awaiting approval: refused for its submitter (`same_approver`), after a cancel
 * (`canceled`), or in another state; approving it again is `already`, and a batch that was never
 * held needs none (`not_required`).
 * KEYS: 1 batch hash. ARGV: 1 approver, 2 now, 3 this call's id (unique per call), stored as
 * `approvedCall`. Returns { outcome, state }.
 *
 * A call run twice (the Redis client resends a command whose reply a dropped connection lost): a
 * batch whose `approvedCall` is this call's id was approved by this very call, and the second run
 * answers `approved`, as the first did. Before, it answered `already`: the API and the CLI said
 * `already_approved` for the approval that had just happened. Comparing the approver and time
 * instead would answer `approved` twice to the same person approving twice in one millisecond (a
 * double click), whose second approval is `already`.
 */
export const APPROVE_BATCH = new LuaScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'submittedBy', 'approvedBy', 'canceledAt',
  'holdForApproval', 'approvedCall')
if not h[1] then return { 'missing', '' } end
if h[3] then
  if h[6] and h[6] == ARGV[3] then return { 'approved', h[1] } end
  return { 'already', h[1] }
end
if h[4] then return { 'canceled', h[1] } end
if h[5] ~= '1' then return { 'not_required', h[1] } end
if h[1] ~= 'awaiting_approval' then return { 'not_awaiting_approval', h[1] } end
if h[2] == ARGV[1] then return { 'same_approver', h[1] } end
redis.call('HSET', KEYS[1], 'approvedBy', ARGV[1], 'approvedAt', ARGV[2], 'approvedCall', ARGV[3])
return { 'approved', h[1] }
`);

/**
 * Marks a batch canceled (the first cancel's who and when are kept); refused while it is still
 * ingesting (rows are being created and enqueued) and once it has completed (every row is final:
 * nothing is left to cancel, and a completed batch must not read as canceled).
 * KEYS: 1 batch hash. ARGV: 1 by, 2 now. Returns the state, or '' when there is no batch.
 */
export const MARK_CANCELED = new LuaScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return '' end
if st == 'ingesting' or st == 'completed' then return st end
if redis.call('HSETNX', KEYS[1], 'canceledAt', ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], 'canceledBy', ARGV[1])
end
return st
`);

/**
 * Counts row `line` as one a cancel failed (`canceledRows` on the batch hash), once per line: a
 * bit per line in `<prefix>:batch:<id>:canceled-lines` says it was counted. So a count the Redis
 * client runs twice (it resends a command whose reply a dropped connection lost) counts once;
 * before, a plain HINCRBY run twice counted the row twice. A bit per line costs an eighth of a byte
 * a line (12.5 KB for 100,000 lines) and needs no expiry. On a cluster both keys share the prefix's
 * hash tag.
 * KEYS: 1 batch hash, 2 the batch's counted lines. ARGV: 1 line. Returns 1 when counted now, 0
 * when the line was counted before.
 */
export const ADD_CANCELED_ROW = new LuaScript(`
if redis.call('SETBIT', KEYS[2], ARGV[1], 1) == 1 then return 0 end
redis.call('HINCRBY', KEYS[1], 'canceledRows', 1)
return 1
`);

/**
 * Shared by APPLY_EVENTS and RESYNC_ROWS (after MAYBE_COMPLETE): counts the row of intent hash
 * `ih` (of batch hash `bh`, batch `bid`) in `state` as of stream id `sid`.
 *
 * The state a row was last counted in lives on the intent hash (`batchSeen` = "<stream id>
 * <state>"), so counting is O(1) and idempotent: a `sid` not newer than the one counted (a
 * redelivery, or an older event claimed late from a dead consumer) changes nothing. Moving a row
 * from its counted state to the new one adjusts the per-state counts and money totals; the first
 * move into a final state counts the row as final, and may complete the batch. Returns true when
 * this call completed the batch. KEYS[1..3] must be the events stream, the queued and completed
 * indexes.
 */
const COUNT_ROW = `
local FINAL = ${FINAL_SET}
local function newer(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not bm then return true end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  if am ~= bm then return am > bm end
  return as > bs
end
local function count_row(ih, bh, bid, sid, state, now, maxlen)
  if redis.call('EXISTS', bh) == 0 then return false end
  local f = redis.call('HMGET', ih, 'amount', 'currency', 'batchSeen')
  -- Intent amounts are non-negative integers; anything else would fail HINCRBY halfway.
  if not (f[1] and string.match(f[1], '^%d+$')) then return false end
  local prevId, prevState = nil, nil
  if f[3] then prevId, prevState = string.match(f[3], '^(%S+) (%S+)$') end
  if prevId and not newer(sid, prevId) then return false end
  redis.call('HSET', ih, 'batchSeen', sid .. ' ' .. state)
  if prevState == state then return false end
  if prevState then
    redis.call('HINCRBY', bh, 'n:' .. prevState, -1)
    redis.call('HINCRBY', bh, 'a:' .. prevState .. ':' .. f[2], '-' .. f[1])
  end
  redis.call('HINCRBY', bh, 'n:' .. state, 1)
  redis.call('HINCRBY', bh, 'a:' .. state .. ':' .. f[2], f[1])
  if FINAL[state] and not (prevState and FINAL[prevState]) then
    redis.call('HINCRBY', bh, 'final', 1)
    return maybe_complete(bh, bid, now, 2, 3, 1, maxlen) == 'completed'
  end
  return false
end
`;

/**
 * Applies payment events to batch counters and acknowledges them, in one step (COUNT_ROW per
 * event).
 *
 * KEYS: 1 events stream, 2 queued index, 3 completed index, then per event: intent hash, batch hash.
 * ARGV: 1 group, 2 now, 3 events max length, 4 event count n, then per event: stream id, state,
 * batch id; then every stream id to acknowledge.
 * Returns the ids of batches this call completed.
 */
export const APPLY_EVENTS = new LuaScript(`${MAYBE_COMPLETE}${COUNT_ROW}
local now, maxlen, n = ARGV[2], ARGV[3], tonumber(ARGV[4])
local completed = {}
for i = 0, n - 1 do
  local sid, state, bid = ARGV[5 + 3 * i], ARGV[6 + 3 * i], ARGV[7 + 3 * i]
  if count_row(KEYS[4 + 2 * i], KEYS[5 + 2 * i], bid, sid, state, now, maxlen) then
    completed[#completed + 1] = bid
  end
end
local acks = {}
for j = 5 + 3 * n, #ARGV do acks[#acks + 1] = ARGV[j] end
if #acks > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(acks)) end
return completed
`);

/**
 * Counts rows from their intents' current state instead of their events: after the stream's trim
 * removed events before the batch tracker read them (infra/redis/stream-consumer.ts), the counts
 * of the rows those events moved are behind, and a batch whose last rows' events were lost would
 * never complete. Each row whose intent is in a counted state (TRACKED_STATES) is counted in it
 * as of the stream's last generated id (COUNT_ROW), read in this same step: every event up to that id is
 * already in the intent's state (the transition that wrote the state appended its event in one
 * step), so the events still unread that are older change nothing, and newer ones count as usual.
 * A row in a state that publishes no event (queued, submitting, unknown) keeps its count.
 * KEYS: 1 events stream, 2 queued index, 3 completed index, then per row: intent hash, batch hash.
 * ARGV: 1 now, 2 events max length, 3 row count n, then per row: batch id.
 * Returns the ids of batches this call completed.
 */
export const RESYNC_ROWS = new LuaScript(`${MAYBE_COMPLETE}${COUNT_ROW}
local TRACKED = ${TRACKED_SET}
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local sid = nil
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for j = 1, #info, 2 do if info[j] == 'last-generated-id' then sid = info[j + 1] end end
if not sid then return {} end
local now, maxlen, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local completed = {}
for i = 0, n - 1 do
  local ih, bh, bid = KEYS[4 + 2 * i], KEYS[5 + 2 * i], ARGV[4 + i]
  local state = redis.call('HGET', ih, 'state')
  if state and TRACKED[state] and count_row(ih, bh, bid, sid, state, now, maxlen) then
    completed[#completed + 1] = bid
  end
end
return completed
`);

/**
 * Claims the references of a chunk of batch rows in the per-type registry (a hash: lower-cased
 * reference → `<batch id>:<line>`), and refuses the rows whose reference another batch holds
 * unless reuse is allowed. A refused row is recorded as an invalid row and taken out of the
 * batch's counters in the same step, once per line (a row already recorded is only reported), so
 * claiming the same chunk again — a resumed ingest — changes nothing. Claims are never released:
 * a reference claimed by a batch stays that batch's.
 *
 * KEYS: 1 registry hash, 2 batch hash, 3 batch's invalid rows.
 * ARGV: 1 batch id, 2 allow reuse ('1'/'0'), 3 message template ({reference} {batch} {line}),
 * then per row: registry field, reference as written, line, amount (minor units), currency, what
 * the results file shows of the row if it is refused (a JSON object, see refuse_row).
 * Returns { reused count, { row index (0-based), holder, ... } } for the refused rows.
 */
export const CLAIM_REFERENCES = new LuaScript(`${REFUSE_ROW}
local function fill(text, name, value)
  local s, e = string.find(text, name, 1, true)
  if not s then return text end
  return string.sub(text, 1, s - 1) .. value .. string.sub(text, e + 1)
end
local registry, bh, inv = KEYS[1], KEYS[2], KEYS[3]
local mine, allow, template = ARGV[1] .. ':', ARGV[2] == '1', ARGV[3]
local reused, refused = 0, {}
for i = 4, #ARGV, 6 do
  local field, ref, line, amount, cur = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local holder = nil
  if redis.call('HSETNX', registry, field, mine .. line) == 0 then
    holder = redis.call('HGET', registry, field)
  end
  if holder and string.sub(holder, 1, #mine) ~= mine then
    if allow then
      reused = reused + 1
    else
      refused[#refused + 1] = (i - 4) / 6
      refused[#refused + 1] = holder
      local hb, hl = string.match(holder, '^(.*):(%d+)$')
      local msg = fill(fill(fill(template, '{reference}', ref), '{batch}', hb or holder),
        '{line}', hl or '?')
      refuse_row(bh, inv, line, amount, cur, msg, ARGV[i + 5])
    end
  end
end
return { reused, refused }
`);

/**
 * Refuses rows of a batch whose intent key another batch's row already holds (ingest-rows.ts,
 * own-intents.ts): each is recorded as an invalid row with its message and taken out of the
 * batch's counters, once per line, so a resumed ingest refusing them again changes nothing.
 * KEYS: 1 batch hash, 2 batch's invalid rows. ARGV: per row: line, amount (minor units), currency,
 * message, what the results file shows of the row (a JSON object, see refuse_row). Returns how
 * many rows this call refused.
 */
export const REFUSE_ROWS = new LuaScript(`${REFUSE_ROW}
local n = 0
for i = 1, #ARGV, 5 do
  if refuse_row(KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]) then
    n = n + 1
  end
end
return n
`);

/**
 * `billing keys reseal` on a row held for approval: replaces the member `ARGV[1]` of the held set
 * by `ARGV[2]` (the same row, its card token sealed under the current key) under the same line,
 * only while it is still there (an approval or a cancel that took it meanwhile wins).
 * KEYS: 1 the batch's held set. Returns 1 when replaced, 0 when the member was gone.
 */
export const RESEAL_HELD_ROW = new LuaScript(`
local line = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not line then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], line, ARGV[2])
return 1
`);
