#pragma once
// The Redis job store's Lua scripts (see include/quickthumb/redis_store.hpp for the layout). Each
// runs atomically: the state it checks is the state it changes. Every script gets the same first
// four arguments: the key prefix, the time (ms), this consumer's name, the events cap.
//
// A transition's reply: {"ok", event id, previous state, {field, value, ...}} with the job's
// fields as committed; a refusal: {"refused", current state or ""}.

namespace quickthumb::redis_scripts {

inline constexpr const char* prelude = R"lua(
local P, NOW, ME, EVMAX = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local WORK, GROUP = P .. 'work', 'workers'
local FINAL = {succeeded = true, failed = true, cancelled = true}
local function jk(id) return P .. 'job:' .. id end
local function state_of(id) return redis.call('HGET', jk(id), 'state') end
-- Moves a job between the per-state sets; finished jobs are also kept by their last change.
local function move(id, from, to)
  local seq = redis.call('HGET', jk(id), 'seq')
  if from and from ~= '' then redis.call('ZREM', P .. 'state:' .. from, id) end
  redis.call('ZADD', P .. 'state:' .. to, seq, id)
  if FINAL[to] then redis.call('ZADD', P .. 'final', NOW, id) else redis.call('ZREM', P .. 'final', id) end
end
local function drop_entry(id)
  local e = redis.call('HGET', jk(id), 'entry')
  if e then
    redis.call('XACK', WORK, GROUP, e)
    redis.call('XDEL', WORK, e)
    redis.call('HDEL', jk(id), 'entry')
  end
end
local function add_entry(id)
  local e = redis.call('XADD', WORK, '*', 'job', id)
  redis.call('HSET', jk(id), 'entry', e)
end
-- The change, appended to the events stream and returned.
local function changed(id, prev)
  local f = redis.call('HGETALL', jk(id))
  local e = redis.call('XADD', P .. 'events', 'MAXLEN', '~', EVMAX, '*', 'prev', prev, 'by', ME, unpack(f))
  return {'ok', e, prev, f}
end
)lua";

// ARGV[5] idempotency key ('' for none), [6] its window (ms), [7] job count, then per job: its id,
// its field count n and n field/value pairs.
inline constexpr const char* insert = R"lua(
local key, window, n = ARGV[5], ARGV[6], tonumber(ARGV[7])
if key ~= '' then
  -- "<first use, ms> <job ids as JSON>"; also expired by Redis (PX) once the window is over.
  local seen = redis.call('GET', P .. 'idem:' .. key)
  if seen then
    local at = string.find(seen, ' ', 1, true)
    if at and tonumber(string.sub(seen, 1, at - 1)) > tonumber(NOW) - tonumber(window) then
      return {'replayed', string.sub(seen, at + 1)}
    end
  end
end
local out, ids, i = {'inserted'}, {}, 8
for j = 1, n do
  local id, nf = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local seq = redis.call('INCR', P .. 'seq')
  local args = {'HSET', jk(id), 'id', id, 'seq', seq, 'state', 'queued'}
  for k = i, i + nf * 2 - 1 do args[#args + 1] = ARGV[k] end
  i = i + nf * 2
  redis.call(unpack(args))
  redis.call('ZADD', P .. 'all', seq, id)
  move(id, nil, 'queued')
  add_entry(id)
  out[#out + 1] = changed(id, '')
  ids[#ids + 1] = id
end
if key ~= '' then
  redis.call('SET', P .. 'idem:' .. key, NOW .. ' ' .. cjson.encode(ids), 'PX', window)
  redis.call('ZADD', P .. 'idem', NOW, key)
end
return out
)lua";

// One transition. ARGV[5] id, [6] the states it may leave (space-separated), [7] the state it
// enters, [8] what happens to its work entry: 'claim' (this consumer takes it: a start), 'drop'
// (acknowledged and deleted: finished), 'delay' (dropped, the job waits in delayed until [9]),
// 'renew' (a new entry at the end of the stream), [10] attempts: '+1', '-1', 'reset' or '',
// [11] field count n, then n field/value pairs to set ('' deletes the field).
inline constexpr const char* transition = R"lua(
local id, from, to, entry, at, attempts, nf = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local s = state_of(id)
if not s or not string.find(' ' .. from .. ' ', ' ' .. s .. ' ', 1, true) then return {'refused', s or ''} end
local k = jk(id)
-- An attempt's outcome counts only from the instance running it: one presumed dead whose job was
-- claimed and started elsewhere is refused (as if the job were no longer processing).
if from == 'processing' and ME ~= '' and redis.call('HGET', k, 'owner') ~= ME then return {'refused', 'taken'} end
redis.call('HSET', k, 'state', to, 'updated_at', NOW)
for i = 12, 11 + nf * 2, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', k, ARGV[i]) else redis.call('HSET', k, ARGV[i], ARGV[i + 1]) end
end
if attempts == '+1' then redis.call('HINCRBY', k, 'attempts', 1)
elseif attempts == '-1' then
  if tonumber(redis.call('HGET', k, 'attempts') or '0') > 0 then redis.call('HINCRBY', k, 'attempts', -1) end
elseif attempts == 'reset' then redis.call('HSET', k, 'attempts', 0) end
move(id, s, to)
if entry == 'claim' then
  redis.call('HSET', k, 'owner', ME)
  local e = redis.call('HGET', k, 'entry')
  if e and ME ~= '' then redis.call('XCLAIM', WORK, GROUP, ME, 0, e, 'JUSTID') end
else
  redis.call('ZREM', P .. 'delayed', id)
  drop_entry(id)
  if entry == 'delay' then redis.call('ZADD', P .. 'delayed', at, id)
  elseif entry == 'renew' then add_entry(id) end
end
return changed(id, s)
)lua";

// ARGV[5] id, [6] progress: stored only while the job runs; no event (progress is told, not stored).
inline constexpr const char* progress = R"lua(
if state_of(ARGV[5]) ~= 'processing' then return 0 end
redis.call('HSET', jk(ARGV[5]), 'progress', ARGV[6], 'updated_at', NOW)
return 1
)lua";

// A work entry whose consumer is gone (claimed by this one), or a job this consumer left running
// when it stopped: ARGV[5] job id, [6] entry id ('' = the job's own entry). Replies {'run'} (queued:
// run it), {'drop'} (nothing to run: acknowledged), or a transition's reply with first element
// 'requeued' or 'failed' (the job was processing: its runner is gone).
inline constexpr const char* recover = R"lua(
local id, e = ARGV[5], ARGV[6]
local k = jk(id)
local s = state_of(id)
local cur = redis.call('HGET', k, 'entry')
if e == '' then e = cur or '' end
if not s or FINAL[s] or cur ~= e then
  if e ~= '' then redis.call('XACK', WORK, GROUP, e); redis.call('XDEL', WORK, e) end
  return {'drop'}
end
if s == 'queued' then return {'run'} end
local a, m = tonumber(redis.call('HGET', k, 'attempts') or '0'), tonumber(redis.call('HGET', k, 'max_attempts') or '1')
local r
if a >= m then
  redis.call('HSET', k, 'state', 'failed', 'updated_at', NOW, 'err_code', 'interrupted', 'err_msg',
    'the service stopped during each of its ' .. a .. ' attempts (a crash while decoding this image?); POST .../retry runs it again')
  move(id, 'processing', 'failed')
  drop_entry(id)
  r = changed(id, 'processing')
  r[1] = 'failed'
else
  redis.call('HSET', k, 'state', 'queued', 'progress', 0, 'run_after', 0, 'updated_at', NOW)
  move(id, 'processing', 'queued')
  r = changed(id, 'processing')
  r[1] = 'requeued'
end
return r
)lua";

// Resets the idle time of ARGV[5..] (entry ids) that this consumer still holds; replies with the
// ones it no longer holds (acknowledged, or claimed by another consumer).
inline constexpr const char* refresh = R"lua(
local gone = {}
for i = 5, #ARGV do
  local p = redis.call('XPENDING', WORK, GROUP, ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ME then
    redis.call('XCLAIM', WORK, GROUP, ME, 0, ARGV[i], 'JUSTID')
  else
    gone[#gone + 1] = ARGV[i]
  end
end
return gone
)lua";

// Delayed jobs due by NOW get a work entry (at most ARGV[5]). Replies {moved, next run_after or 0}.
inline constexpr const char* promote = R"lua(
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[5]))
local n = 0
for _, id in ipairs(due) do
  redis.call('ZREM', P .. 'delayed', id)
  if state_of(id) == 'queued' and not redis.call('HGET', jk(id), 'entry') then
    add_entry(id)
    n = n + 1
  end
end
local nxt = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
return {n, nxt[2] or '0'}
)lua";

// Queued jobs due by ARGV[5], oldest first, at most ARGV[6]: the single-instance feeder's scan.
inline constexpr const char* due = R"lua(
local at, limit, out, start = tonumber(ARGV[5]), tonumber(ARGV[6]), {}, 0
while #out < limit do
  local ids = redis.call('ZRANGE', P .. 'state:queued', start, start + 255)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if tonumber(redis.call('HGET', jk(id), 'run_after') or '0') <= at then
      out[#out + 1] = id
      if #out >= limit then break end
    end
  end
  start = start + 256
end
return out
)lua";

// A page of the list: ARGV[5] state ('' for all), [6] limit, [7] before (exclusive seq, '' for none).
// Replies {job fields, ...}, newest first, at most limit + 1 (one more says there is a next page).
inline constexpr const char* list = R"lua(
local set = ARGV[5] == '' and (P .. 'all') or (P .. 'state:' .. ARGV[5])
local max = ARGV[7] == '' and '+inf' or ('(' .. ARGV[7])
local ids = redis.call('ZREVRANGEBYSCORE', set, max, '-inf', 'LIMIT', 0, tonumber(ARGV[6]) + 1)
local out = {}
for _, id in ipairs(ids) do out[#out + 1] = redis.call('HGETALL', jk(id)) end
return out
)lua";

// Deletes those of ARGV[7..] (ids) that are finished and last changed before ARGV[5], and the
// idempotency keys first used at or before ARGV[6]; returns how many jobs went.
inline constexpr const char* remove_expired = R"lua(
local cutoff, n = tonumber(ARGV[5]), 0
for _, k in ipairs(redis.call('ZRANGEBYSCORE', P .. 'idem', '-inf', ARGV[6], 'LIMIT', 0, 1000)) do
  redis.call('DEL', P .. 'idem:' .. k)
  redis.call('ZREM', P .. 'idem', k)
end
for i = 7, #ARGV do
  local id = ARGV[i]
  local s = state_of(id)
  if s and FINAL[s] and tonumber(redis.call('HGET', jk(id), 'updated_at')) < cutoff then
    redis.call('DEL', jk(id))
    redis.call('ZREM', P .. 'all', id)
    redis.call('ZREM', P .. 'state:' .. s, id)
    redis.call('ZREM', P .. 'final', id)
    n = n + 1
  end
end
return n
)lua";

}  // namespace quickthumb::redis_scripts
