package alert

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// keepTransitions is how many transitions an incident keeps for receivers that are
// behind; one further behind skips to the oldest kept.
const keepTransitions = 16

// keep is keepTransitions as the scripts write it.
var keep = strconv.Itoa(keepTransitions)

// observeFunction counts one batch's events of one incident into it, each at most once,
// opening or reopening the incident when the batch brings its first event (or its
// first since the resolve). Opening writes the trigger into the outbox (field t:<seq>)
// and marks the incident due, in the same step: a crash after it loses no page.
//
// K[1] incident hash  K[2] seen set  K[3] recipients HLL  K[4] domains set  K[7] due
// (K[5] index and K[6] active are written by the caller, once for every incident of
// the call: see observeScript and observeBatchScript)
// a: {now, seen_ttl, retention (ms, as strings), fp, tenant, class, severity, sd, sip,
// rd, code, rule, esp, fix (JSON text), replies: [...], ev: [[id, recipient hash,
// recipient domain], ...]}
//
// Returns {opened: 0 no | 1 opened | 2 reopened, fresh events, episode count, seq,
// then per event 0 when it counted now, 1 when it was already counted, 2 (3) when it
// was already counted and is the event that opened (reopened) the incident's current
// episode}, and whether any event was fresh (the caller then lists the incident in the
// index and the active set). The opener is kept in the hash (opened_by) because its
// delivery can fail after this script ran (the recipients' write, in the same batch):
// the redelivery finds it counted, and the process role still owes the opening its
// log line and metric.
//
// st is the caller's record of the observation for failed: st.ids the event IDs it
// marked as seen, st.counted once it wrote the count. The callers run observe under
// pcall, so an error (a Redis error reply raised by redis.call, WRONGTYPE on one
// incident's key, or a Lua error) fails that incident alone. Redis does not roll back
// a script's writes: failed forgets the IDs the observation marked as seen, so that
// the redelivered events count then.
//
// Each redis.call costs Redis time on the hot path, so the common case (an open
// incident, a batch of new events) reads the hash with one HMGET and writes it with
// one HSET: the counts are added here rather than with HINCRBY.
var observeFunction = `
local function observe(K, a, st)
local now = tonumber(a.now)
local fresh = {}
local dup = {}
for i, e in ipairs(a.ev) do
  if redis.call('ZADD', K[2], 'NX', now, e[1]) == 1 then
    fresh[#fresh + 1] = e
    st.ids[#st.ids + 1] = e[1]
    dup[i] = 0
  else
    dup[i] = 1
  end
end
local h = redis.call('HMGET', K[1], 'seq', 'count', 'state', 'total', 'examples', 'reopened', 'opened_by')
if h[7] then
  for i, e in ipairs(a.ev) do
    if dup[i] == 1 and e[1] == h[7] then
      if tonumber(h[6] or '0') > 0 then dup[i] = 3 else dup[i] = 2 end
    end
  end
end
local seq = tonumber(h[1] or '0')
local count = tonumber(h[2] or '0')
local out = {0, #fresh, count, seq}
if #fresh == 0 then
  for i = 1, #dup do out[#out + 1] = dup[i] end
  return out, false
end
local state = h[3]
local total = tonumber(h[4] or '0')
local ex = h[5] or '[]'
local opened = 0
if not state then
  opened = 1
  seq = seq + 1
  count = 0
  total = 0
  ex = '[]'
  redis.call('HSET', K[1], 'fingerprint', a.fp, 'tenant', a.tenant, 'class', a.class,
    'severity', a.severity, 'sending_domain', a.sd, 'sending_ip', a.sip, 'receiving_domain', a.rd,
    'created_at', now, 'opened_at', now, 'first_seen', now, 'state', 'open', 'seq', seq,
    'reopened', 0, 't:' .. seq, 'trigger|' .. now .. '|', 'opened_by', fresh[1][1])
elseif state == 'resolved' then
  opened = 2
  seq = seq + 1
  count = 0
  ex = '[]'
  redis.call('DEL', K[3], K[4])
  redis.call('HDEL', K[1], 'resolved_at', 'resolved_by', 'acked_at', 'acked_by', 'reminded_at')
  redis.call('HSET', K[1], 'state', 'reopened', 'seq', seq, 'opened_at', now, 'first_seen', now,
    't:' .. seq, 'trigger|' .. now .. '|', 'reopened', tonumber(h[6] or '0') + 1, 'opened_by', fresh[1][1])
end
if opened > 0 then
  if seq > ` + keep + ` then redis.call('HDEL', K[1], 't:' .. (seq - ` + keep + `)) end
  redis.call('ZADD', K[7], now, a.fp)
end
-- One PFADD for the batch and one ZINCRBY per domain: a 530 storm's batch is hundreds
-- of events of one incident.
local hashes, doms = {}, {}
for _, e in ipairs(fresh) do
  if e[2] ~= '' then hashes[#hashes + 1] = e[2] end
  if e[3] ~= '' then doms[e[3]] = (doms[e[3]] or 0) + 1 end
end
for i = 1, #hashes, 500 do
  redis.call('PFADD', K[3], unpack(hashes, i, math.min(i + 499, #hashes)))
end
-- The set only grows past its bound with a new member: one whose score is now the
-- increment alone. Without one it is as large as the last call left it (trimmed then).
local added = false
for d, n in pairs(doms) do
  if tonumber(redis.call('ZINCRBY', K[4], n, d)) == n then added = true end
end
if added and redis.call('ZCARD', K[4]) > 200 then redis.call('ZREMRANGEBYRANK', K[4], 0, -101) end
local grew = false
local list = {}
if #a.replies > 0 then
  if ex ~= '[]' and ex ~= '{}' then list = cjson.decode(ex) end
  for _, r in ipairs(a.replies) do
    if #list >= 5 then break end
    local known = false
    for _, x in ipairs(list) do if x == r then known = true end end
    if not known and r ~= '' then list[#list + 1] = r; grew = true end
  end
end
count = count + #fresh
local fields = {'count', count, 'total', total + #fresh, 'last_seen', now, 'code', a.code,
  'rule', a.rule, 'esp', a.esp, 'fix', a.fix}
if grew then
  fields[#fields + 1] = 'examples'
  fields[#fields + 1] = cjson.encode(list)
elseif opened > 0 then
  fields[#fields + 1] = 'examples'
  fields[#fields + 1] = '[]'
end
redis.call('HSET', K[1], unpack(fields))
st.counted = true
local ret = tonumber(a.retention)
redis.call('PEXPIRE', K[1], ret)
redis.call('PEXPIRE', K[3], ret)
redis.call('PEXPIRE', K[4], ret)
local seenTTL = tonumber(a.seen_ttl)
redis.call('PEXPIRE', K[2], seenTTL)
if now % 8 == 0 then redis.call('ZREMRANGEBYSCORE', K[2], '-inf', now - seenTTL) end
out = {opened, #fresh, count, seq}
for i = 1, #dup do out[#out + 1] = dup[i] end
return out, true
end

-- failed undoes what a failed observe left that would hide its events from their
-- redelivery, the seen marks (unless it had written the count: the events are
-- counted), and returns the error's text. Writes before the failure stay: an
-- incident opened then keeps its trigger, and the redelivery counts into it.
local function failed(K, st, e)
  if not st.counted then
    for i = 1, #st.ids, 500 do
      pcall(redis.call, 'ZREM', K[2], unpack(st.ids, i, math.min(i + 499, #st.ids)))
    end
  end
  if type(e) == 'table' then e = e.err end
  return tostring(e or 'observe failed')
end
`

// observeScript runs observe for one incident (StoreOptions.PerIncidentScripts).
//
// KEYS[1] incident hash  KEYS[2] seen set  KEYS[3] recipients HLL  KEYS[4] domains set
// KEYS[5] index  KEYS[6] active  KEYS[7] due
// ARGV[1] JSON: observe's argument.
var observeScript = redis.NewScript(observeFunction + `
local a = cjson.decode(ARGV[1])
local st = {ids = {}}
local ok, out, fresh = pcall(observe, KEYS, a, st)
if not ok then return redis.error_reply(failed(KEYS, st, out)) end
if fresh then
  redis.call('ZADD', KEYS[5], a.now, a.fp)
  redis.call('ZADD', KEYS[6], a.now, a.fp)
end
return out
`)

// observeBatchScript runs observe for every incident of a batch in one call, on any
// topology (the keys share the hash tag {a}): the per-call cost was most of the incidents' Redis time
// (about 20 incidents a batch), and the index and the active set take every incident
// with fresh events in one ZADD each.
//
// KEYS[1] index  KEYS[2] active  KEYS[3] due, then for each incident its hash, seen
// set, recipients HLL and domains set.
// ARGV[1] JSON: an array of observe's arguments, one per incident, in key order; all
// with the same now.
// Returns per incident, in order, observe's result, or the error's text (a string where
// a result is an array) when its observation failed: the others are counted all the
// same, and no incident needs running again.
var observeBatchScript = redis.NewScript(observeFunction + `
local all = cjson.decode(ARGV[1])
local res, listed = {}, {}
for g, a in ipairs(all) do
  local k = 3 + 4 * (g - 1)
  local K = {KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[1], KEYS[2], KEYS[3]}
  local st = {ids = {}}
  local ok, out, fresh = pcall(observe, K, a, st)
  if not ok then
    res[g] = failed(K, st, out)
  else
    res[g] = out
    if fresh then
      listed[#listed + 1] = a.now
      listed[#listed + 1] = a.fp
    end
  end
end
for i = 1, #listed, 500 do
  local j = math.min(i + 499, #listed)
  redis.call('ZADD', KEYS[1], unpack(listed, i, j))
  redis.call('ZADD', KEYS[2], unpack(listed, i, j))
end
return res
`)

// transitionScript moves an incident by hand or by the sweep: resolve (by hand, or
// when quiet for ARGV[5] ms), ack, or remind (when ARGV[5] ms passed since it opened or
// was last reminded, and nobody acknowledged it). Each change writes its outbox entry
// and marks the incident due.
//
// KEYS[1] incident hash  KEYS[2] active  KEYS[3] due
// ARGV[1] op: resolve | ack | remind  ARGV[2] now (ms)  ARGV[3] fingerprint
// ARGV[4] who (token name, "quiet period", …)  ARGV[5] quiet period or interval (ms; 0 = now)
//
// Returns {1, seq} when it changed the incident, {0, seq} when there was nothing to
// do, {-1, 0} when there is no such incident.
var transitionScript = redis.NewScript(`
local op = ARGV[1]
local now = tonumber(ARGV[2])
local param = tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'state', 'seq', 'last_seen', 'acked_at', 'reminded_at', 'opened_at')
local state = h[1]
if not state then return {-1, 0} end
local seq = tonumber(h[2] or '0')
local kind
if op == 'resolve' then
  if state == 'resolved' then return {0, seq} end
  if param > 0 and now - tonumber(h[3] or '0') < param then return {0, seq} end
  kind = 'resolve'
  redis.call('HSET', KEYS[1], 'state', 'resolved', 'resolved_at', now, 'resolved_by', ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[3])
elseif op == 'ack' then
  if state == 'resolved' or h[4] then return {0, seq} end
  kind = 'ack'
  redis.call('HSET', KEYS[1], 'acked_at', now, 'acked_by', ARGV[4])
elseif op == 'remind' then
  if state == 'resolved' or h[4] then return {0, seq} end
  local since = tonumber(h[5] or h[6] or '0')
  if param <= 0 or now - since < param then return {0, seq} end
  kind = 'reminder'
  redis.call('HSET', KEYS[1], 'reminded_at', now)
else
  return redis.error_reply('unknown transition ' .. op)
end
seq = seq + 1
redis.call('HSET', KEYS[1], 'seq', seq, 't:' .. seq, kind .. '|' .. now .. '|' .. ARGV[4])
if seq > ` + keep + ` then redis.call('HDEL', KEYS[1], 't:' .. (seq - ` + keep + `)) end
redis.call('ZADD', KEYS[3], now, ARGV[3])
return {1, seq}
`)

// claimScript takes the next transition a receiver has not been sent, with a lease, so
// that of any number of notifier replicas exactly one sends it.
//
// KEYS[1] incident hash
// ARGV[1] receiver  ARGV[2] now (ms)  ARGV[3] lease (ms)  ARGV[4] claim token
//
// Returns {1, seq, "kind|at|by", tries} for a claimed transition, {0} when the receiver
// is up to date, {-2, until} when another replica holds the lease, {-3, at} when the
// receiver's next retry is later.
var claimScript = redis.NewScript(`
local r = ARGV[1]
local now = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'seq', 'sent:' .. r, 'lease:' .. r, 'until:' .. r, 'next:' .. r, 'tries:' .. r)
local seq = tonumber(h[1] or '0')
local sent = tonumber(h[2] or '0')
if sent >= seq then return {0} end
if h[3] and tonumber(h[4] or '0') > now then return {-2, tonumber(h[4])} end
if tonumber(h[5] or '0') > now then return {-3, tonumber(h[5])} end
local s = sent + 1
local t = false
while s <= seq do
  t = redis.call('HGET', KEYS[1], 't:' .. s)
  if t then break end
  s = s + 1
end
if not t then
  redis.call('HSET', KEYS[1], 'sent:' .. r, seq)
  return {0}
end
redis.call('HSET', KEYS[1], 'lease:' .. r, ARGV[4], 'until:' .. r, now + tonumber(ARGV[3]))
return {1, s, t, tonumber(h[6] or '0')}
`)

// finishScript records how a claimed send ended: done (delivered), drop (not worth
// retrying, or expired) or retry (at ARGV[6]). It changes nothing unless the caller
// still holds the lease, so a replica whose lease ran out cannot undo another's work.
// Delivering a trigger makes an open or reopened incident notified.
//
// KEYS[1] incident hash
// ARGV[1] receiver  ARGV[2] claim token  ARGV[3] seq  ARGV[4] done | drop | retry
// ARGV[5] now (ms)  ARGV[6] next try (ms, retry only)  ARGV[7] error text ("" if none)
//
// Returns 1 when recorded, 0 when the lease was lost.
var finishScript = redis.NewScript(`
local r = ARGV[1]
if redis.call('HGET', KEYS[1], 'lease:' .. r) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], 'lease:' .. r, 'until:' .. r)
local outcome = ARGV[4]
if outcome == 'retry' then
  redis.call('HSET', KEYS[1], 'next:' .. r, ARGV[6], 'err:' .. r, ARGV[7])
  redis.call('HINCRBY', KEYS[1], 'tries:' .. r, 1)
  return 1
end
redis.call('HSET', KEYS[1], 'sent:' .. r, ARGV[3])
redis.call('HDEL', KEYS[1], 'next:' .. r, 'tries:' .. r)
if outcome == 'done' then
  redis.call('HSET', KEYS[1], 'ok:' .. r, ARGV[5])
  redis.call('HDEL', KEYS[1], 'err:' .. r)
  local t = redis.call('HGET', KEYS[1], 't:' .. ARGV[3]) or ''
  if string.sub(t, 1, 8) == 'trigger|' then
    local state = redis.call('HGET', KEYS[1], 'state')
    if state == 'open' or state == 'reopened' then redis.call('HSET', KEYS[1], 'state', 'notified') end
  end
else
  redis.call('HSET', KEYS[1], 'err:' .. r, ARGV[7])
end
return 1
`)

// settleScript sets when an incident is next due for the given receivers: the
// earliest retry or lease end among those still behind, or off the due set when none
// is. Transitions add to the due set in their own scripts on the same slot, so a
// transition can never be lost between a read and this write.
//
// KEYS[1] incident hash  KEYS[2] due
// ARGV[1] fingerprint  ARGV[2] now (ms)  ARGV[3..] receivers
//
// Returns the next due time (ms), or 0 when nothing is pending.
var settleScript = redis.NewScript(`
local now = tonumber(ARGV[2])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local earliest = 0
for i = 3, #ARGV do
  local r = ARGV[i]
  local h = redis.call('HMGET', KEYS[1], 'sent:' .. r, 'next:' .. r, 'until:' .. r)
  if tonumber(h[1] or '0') < seq then
    local at = math.max(now, tonumber(h[2] or '0'), tonumber(h[3] or '0'))
    if earliest == 0 or at < earliest then earliest = at end
  end
end
if earliest == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], earliest, ARGV[1])
end
return earliest
`)
