package suppress

import "github.com/redis/go-redis/v9"

// The recipient script (newRecipientScript) applies one event to one recipient, atomically and at most once.
// It is on the hot path, and each redis.call costs about 2 µs of Redis time here, so
// the common actions make as few as possible: a record-only event 2, a soft bounce
// below the threshold 5, a new permanent suppression 4.
//
// The recipient's log is one hash: field = event ID, value = the history entry. HSETNX
// on it is both the idempotency check and the history write. It keeps the recipient's
// recent events (trimmed to the newest LogKeep once it passes 2×LogKeep, about one event
// in eight checking) and expires a log TTL after the last event.
//
// KEYS[1] log hash   KEYS[2] suppression hash   KEYS[3] soft window
// ARGV[1] the arguments below, packed as one value (see codec: a MessagePack stream or a JSON array of strings):
// [1] event ID (the log field)   [2] action: suppress | soft | reset | record
// ARGV[3] now (ms)        ARGV[4] log TTL (ms)
// ARGV[5] history entry (JSON)  ARGV[6] entries kept
// ARGV[7] when the change was first seen (ms; 0 = now): a suppression's first_seen and last_seen
// suppress and soft only:
// ARGV[8] suppression TTL (ms, 0 = permanent)
// ARGV[9] soft window (ms)   ARGV[10] soft threshold   ARGV[11] TTL of a soft-threshold suppression (ms)
// ARGV[12] reason  ARGV[13] class  ARGV[14] rule  ARGV[15] code  ARGV[16] reply text
// ARGV[17] ESP    ARGV[18] address  ARGV[19] tenant
// ARGV[20] (optional) the record's event ID when it is not the log field (a released
// held suppression: logged as "<id>:released", recorded as "<id>")
//
// Returns {duplicate 0|1, suppressed 0|1|-1 (-1: not looked at, unchanged by a record),
// soft count (-1: not looked at), expires_at ms (0 permanent, -1 none), lifted 0|1}.
// A duplicate returns the current state so the caller can repair the listing index
// after a crash between this script and the index update.
func newRecipientScript(c codec) *redis.Script {
	return redis.NewScript(recipientApply + `return {apply(KEYS[1], KEYS[2], KEYS[3], ` + c.decode("ARGV[1]") + `)}`)
}

// The batch script (newRecipientBatchScript) runs recipientApply for every event of a batch in one call, on
// a single Redis or Sentinel (on Cluster the recipients' keys live in different slots,
// so each event gets its own call there). It also lists every suppress event's
// recipient in its namespace's two listing indexes (on Cluster, network commands in the
// same pipeline do), whatever the script did: ZADD GT into the expiry index (now + the
// suppression TTL, +inf when permanent; GT keeps a later one), then ZADD into the
// by-address index, never before (see pruneScript).
//
// KEYS: each event's log hash, suppression hash and soft window, in event order; a
// suppress event's are followed by its expiry index and its by-address index.
// ARGV: each event's packed arguments. Returns the events' results (as above) one after
// the other in one flat array, five values per event: apply returns them as values, not
// as a table, so an event builds no table but its arguments'.
func newRecipientBatchScript(c codec) *redis.Script {
	return redis.NewScript(recipientApply + `
local out = {}
local k = 0
for e = 1, #ARGV do
  local A = ` + c.decode("ARGV[e]") + `
  local o = 5 * e - 5
  out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = apply(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], A)
  k = k + 3
  if A[2] == 'suppress' then
    local ttl = tonumber(A[8])
    local score = '+inf'
    if ttl > 0 then score = tonumber(A[3]) + ttl end
    redis.call('ZADD', KEYS[k + 1], 'GT', score, A[18])
    redis.call('ZADD', KEYS[k + 2], 0, A[18])
    k = k + 2
  end
end
return out
`)
}

// recipientApply is the body both scripts share: K are the event's keys, A its arguments.
const recipientApply = `
local function apply(K1, K2, K3, A)` + "\n" + `
local now = tonumber(A[3])
local action = A[2]
if redis.call('HSETNX', K1, A[1], A[5]) == 0 then
  local exp = redis.call('HGET', K2, 'expires_at')
  if exp then return 1, 1, redis.call('ZCARD', K3), tonumber(exp), 0 end
  return 1, 0, redis.call('ZCARD', K3), -1, 0
end
redis.call('PEXPIRE', K1, tonumber(A[4]))
local keep = tonumber(A[6])
if now % 8 == 0 and redis.call('HLEN', K1) > 2 * keep then
  -- Drop all but the newest entries. Rare: only recipients with many events get here.
  local all = redis.call('HGETALL', K1)
  local ids = {}
  for i = 1, #all, 2 do
    ids[#ids + 1] = {all[i], tonumber(string.match(all[i + 1], '"at":(%d+)') or '0')}
  end
  table.sort(ids, function(x, y) return x[2] > y[2] end)
  for i = keep + 1, #ids do redis.call('HDEL', K1, ids[i][1]) end
end

if action == 'record' then return 0, -1, -1, -1, 0 end

local soft = -1
local ttl = -1
local reason = A[12]
if action == 'suppress' then
  ttl = tonumber(A[8])
elseif action == 'soft' then
  local window = tonumber(A[9])
  redis.call('ZADD', K3, now, A[1])
  -- ZCOUNT over the window is right whether or not old entries were trimmed yet, so
  -- the trim runs for about one event in eight.
  soft = redis.call('ZCOUNT', K3, now - window, '+inf')
  if now % 8 == 0 then redis.call('ZREMRANGEBYSCORE', K3, '-inf', '(' .. (now - window)) end
  redis.call('PEXPIRE', K3, window)
  if soft < tonumber(A[10]) then return 0, -1, soft, -1, 0 end
  ttl = tonumber(A[11])
  reason = 'soft_bounce_threshold'
elseif action == 'reset' then
  redis.call('DEL', K3)
  local r = redis.call('HMGET', K2, 'reason', 'expires_at')
  if r[1] == 'soft_bounce_threshold' then
    redis.call('DEL', K2)
    return 0, 0, 0, -1, 1
  end
  if r[2] then return 0, 1, 0, tonumber(r[2]), 0 end
  return 0, 0, 0, -1, 0
end
local at = tonumber(A[7])
if not at or at <= 0 then at = now end
local eid = A[20] or A[1]
local old = redis.call('HGET', K2, 'expires_at')
if old == '0' then
  -- Already permanent: a later event never shortens it or rewrites its reason.
  redis.call('HSET', K2, 'last_seen', at, 'last_event_id', eid)
  redis.call('HINCRBY', K2, 'events', 1)
  return 0, 1, soft, 0, 0
end
local exp = 0
if ttl > 0 then
  exp = now + ttl
  if old and tonumber(old) > exp then exp = tonumber(old) end
end
if old then
  redis.call('HSET', K2, 'reason', reason, 'class', A[13], 'rule', A[14], 'code', A[15],
    'reply', A[16], 'event_id', eid, 'esp', A[17], 'address', A[18], 'tenant', A[19],
    'last_seen', at, 'last_event_id', eid, 'expires_at', exp)
  redis.call('HINCRBY', K2, 'events', 1)
else
  -- A new record: one HSET, and a new key has no TTL to remove.
  redis.call('HSET', K2, 'reason', reason, 'class', A[13], 'rule', A[14], 'code', A[15],
    'reply', A[16], 'event_id', eid, 'esp', A[17], 'address', A[18], 'tenant', A[19],
    'last_seen', at, 'last_event_id', eid, 'expires_at', exp, 'first_seen', at, 'events', 1)
end
if exp > 0 then redis.call('PEXPIREAT', K2, exp) elseif old then redis.call('PERSIST', K2) end
return 0, 1, soft, exp, 0
end
`
