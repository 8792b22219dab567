package suppress

import "github.com/redis/go-redis/v9"

// recipientScript applies one event to one recipient, atomically and at most once.
// It is on the hot path: every redis.call costs about 2 µs here, so the common
// actions make as few as possible (record: 4, soft: 7, suppress: 9).
//
// KEYS[1] seen set   KEYS[2] suppression hash   KEYS[3] soft window   KEYS[4] history list
// ARGV[1] event ID        ARGV[2] action: suppress | soft | reset | record
// ARGV[3] now (ms)        ARGV[4] idempotency TTL (ms)
// ARGV[5] history entry (JSON)  ARGV[6] history length cap  ARGV[7] history TTL (ms)
// suppress and soft only:
// ARGV[8] suppression TTL (ms, 0 = permanent)
// ARGV[9] soft window (ms)   ARGV[10] soft threshold   ARGV[11] TTL of a soft-threshold suppression (ms)
// ARGV[12] reason  ARGV[13] class  ARGV[14] rule  ARGV[15] code  ARGV[16] reply text
// ARGV[17] ESP    ARGV[18] address  ARGV[19] tenant
//
// Returns {duplicate 0|1, suppressed 0|1|-1 (-1: not looked at, unchanged by a record),
// soft count (-1: not looked at), expires_at ms (0 permanent, -1 none), lifted 0|1}.
// A duplicate returns the current state so the caller can repair the listing index
// after a crash between this script and the index update.
var recipientScript = redis.NewScript(`
local now = tonumber(ARGV[3])
local action = ARGV[2]
if redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1]) == 0 then
  local exp = redis.call('HGET', KEYS[2], 'expires_at')
  if exp then return {1, 1, redis.call('ZCARD', KEYS[3]), tonumber(exp), 0} end
  return {1, 0, redis.call('ZCARD', KEYS[3]), -1, 0}
end
local idem = tonumber(ARGV[4])
-- Trimming the seen set on every event would cost a call each time; about one event
-- in eight does it, which keeps the set near the events of the last TTL.
if now % 8 == 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - idem) end
redis.call('PEXPIRE', KEYS[1], idem)

local cap = tonumber(ARGV[6])
if redis.call('LPUSH', KEYS[4], ARGV[5]) > 2 * cap then redis.call('LTRIM', KEYS[4], 0, cap - 1) end
redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[7]))

if action == 'record' then return {0, -1, -1, -1, 0} end

local soft = -1
local lifted = 0
local old = redis.call('HGET', KEYS[2], 'expires_at')
local ttl = -1
local reason = ARGV[12]
if action == 'suppress' then
  ttl = tonumber(ARGV[8])
elseif action == 'soft' then
  local window = tonumber(ARGV[9])
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[3], window)
  soft = redis.call('ZCARD', KEYS[3])
  if soft >= tonumber(ARGV[10]) then
    ttl = tonumber(ARGV[11])
    reason = 'soft_bounce_threshold'
  end
elseif action == 'reset' then
  redis.call('DEL', KEYS[3])
  soft = 0
  if old and redis.call('HGET', KEYS[2], 'reason') == 'soft_bounce_threshold' then
    redis.call('DEL', KEYS[2])
    return {0, 0, 0, -1, 1}
  end
end
if ttl < 0 then
  if old then return {0, 1, soft, tonumber(old), 0} end
  return {0, 0, soft, -1, 0}
end
if old == '0' then
  -- Already permanent: a later event never shortens it or rewrites its reason.
  redis.call('HSET', KEYS[2], 'last_seen', now, 'last_event_id', ARGV[1])
  redis.call('HINCRBY', KEYS[2], 'events', 1)
  return {0, 1, soft, 0, 0}
end
local exp = 0
if ttl > 0 then
  exp = now + ttl
  if old and tonumber(old) > exp then exp = tonumber(old) end
end
redis.call('HSET', KEYS[2], 'reason', reason, 'class', ARGV[13], 'rule', ARGV[14], 'code', ARGV[15],
  'reply', ARGV[16], 'event_id', ARGV[1], 'esp', ARGV[17], 'address', ARGV[18], 'tenant', ARGV[19],
  'last_seen', now, 'last_event_id', ARGV[1], 'expires_at', exp)
redis.call('HSETNX', KEYS[2], 'first_seen', now)
redis.call('HINCRBY', KEYS[2], 'events', 1)
if exp > 0 then redis.call('PEXPIREAT', KEYS[2], exp) else redis.call('PERSIST', KEYS[2]) end
return {0, 1, soft, exp, 0}
`)

// incidentScript counts one sender-side event into its incident, at most once.
//
// KEYS[1] incident hash   KEYS[2] incident's seen set
// ARGV[1] event ID  ARGV[2] now (ms)  ARGV[3] idempotency TTL (ms)  ARGV[4] incident TTL (ms, quiet period)
// ARGV[5] fingerprint  ARGV[6] tenant  ARGV[7] class  ARGV[8] sending domain  ARGV[9] sending IP
// ARGV[10] code  ARGV[11] example reply  ARGV[12] fix steps (JSON array)  ARGV[13] rule  ARGV[14] ESP
// ARGV[15] receiving domain ("" unless the incident is about one)
//
// Returns {duplicate 0|1, created 0|1, needs notification 0|1, count}.
var incidentScript = redis.NewScript(`
local now = tonumber(ARGV[2])
local function notified()
  if redis.call('HGET', KEYS[1], 'notified') == '1' then return 0 end
  return 1
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return {1, 0, notified(), tonumber(redis.call('HGET', KEYS[1], 'count') or '0')}
end
local idem = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - idem)
redis.call('PEXPIRE', KEYS[2], idem)
local created = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  created = 1
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[5], 'tenant', ARGV[6], 'class', ARGV[7],
    'sending_domain', ARGV[8], 'sending_ip', ARGV[9], 'first_seen', now, 'notified', 0,
    'fix', ARGV[12], 'first_event_id', ARGV[1], 'receiving_domain', ARGV[15])
end
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSET', KEYS[1], 'last_seen', now, 'code', ARGV[10], 'example_reply', ARGV[11],
  'rule', ARGV[13], 'esp', ARGV[14], 'last_event_id', ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {0, created, notified(), count}
`)
