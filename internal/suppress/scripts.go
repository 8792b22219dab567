package suppress

import "github.com/redis/go-redis/v9"

// recipientScript applies one event to one recipient, atomically and at most once.
//
// KEYS[1] seen set   KEYS[2] suppression hash   KEYS[3] soft window   KEYS[4] history list
// ARGV[1] event ID        ARGV[2] action: suppress | soft | reset | record
// ARGV[3] now (ms)        ARGV[4] idempotency TTL (ms)
// ARGV[5] suppression TTL (ms, 0 = permanent)
// ARGV[6] soft window (ms)   ARGV[7] soft threshold   ARGV[8] TTL of a soft-threshold suppression (ms)
// ARGV[9] reason  ARGV[10] class  ARGV[11] rule  ARGV[12] code  ARGV[13] reply text
// ARGV[14] ESP    ARGV[15] address  ARGV[16] tenant
// ARGV[17] history entry (JSON)  ARGV[18] history length cap  ARGV[19] history TTL (ms)
//
// Returns {duplicate 0|1, suppressed 0|1, soft count, expires_at ms (0 permanent, -1 none), lifted 0|1}.
// A duplicate returns the current state so the caller can repair the tenant index
// after a crash between the script and the index update.
var recipientScript = redis.NewScript(`
local now = tonumber(ARGV[3])
local function state(dup, lifted)
  local exp = -1
  if redis.call('EXISTS', KEYS[2]) == 1 then
    exp = tonumber(redis.call('HGET', KEYS[2], 'expires_at') or '0')
  end
  local sup = 0
  if exp ~= -1 then sup = 1 end
  return {dup, sup, redis.call('ZCARD', KEYS[3]), exp, lifted}
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return state(1, 0)
end
local idem = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - idem)
redis.call('PEXPIRE', KEYS[1], idem)

local function suppress(reason, ttl)
  local old = redis.call('HGET', KEYS[2], 'expires_at')
  if old == '0' then
    -- Already permanent: a later event never shortens or rewrites the reason.
    redis.call('HSET', KEYS[2], 'last_seen', now, 'last_event_id', ARGV[1])
    redis.call('HINCRBY', KEYS[2], 'events', 1)
    return
  end
  redis.call('HSET', KEYS[2], 'reason', reason, 'class', ARGV[10], 'rule', ARGV[11], 'code', ARGV[12],
    'reply', ARGV[13], 'event_id', ARGV[1], 'esp', ARGV[14], 'address', ARGV[15], 'tenant', ARGV[16],
    'last_seen', now, 'last_event_id', ARGV[1])
  redis.call('HSETNX', KEYS[2], 'first_seen', now)
  redis.call('HINCRBY', KEYS[2], 'events', 1)
  if ttl > 0 then
    local exp = now + ttl
    if old and tonumber(old) > exp then exp = tonumber(old) end
    redis.call('HSET', KEYS[2], 'expires_at', exp)
    redis.call('PEXPIREAT', KEYS[2], exp)
  else
    redis.call('HSET', KEYS[2], 'expires_at', 0)
    redis.call('PERSIST', KEYS[2])
  end
end

local action = ARGV[2]
local lifted = 0
if action == 'suppress' then
  suppress(ARGV[9], tonumber(ARGV[5]))
elseif action == 'soft' then
  local window = tonumber(ARGV[6])
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[3], window)
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[7]) then
    suppress('soft_bounce_threshold', tonumber(ARGV[8]))
  end
elseif action == 'reset' then
  redis.call('DEL', KEYS[3])
  if redis.call('HGET', KEYS[2], 'reason') == 'soft_bounce_threshold' then
    redis.call('DEL', KEYS[2])
    lifted = 1
  end
end
redis.call('LPUSH', KEYS[4], ARGV[17])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[18]) - 1)
redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[19]))
return state(0, lifted)
`)

// incidentScript counts one sender-side event into its incident, at most once.
//
// KEYS[1] incident hash   KEYS[2] incident's seen set
// ARGV[1] event ID  ARGV[2] now (ms)  ARGV[3] idempotency TTL (ms)  ARGV[4] incident TTL (ms, quiet period)
// ARGV[5] fingerprint  ARGV[6] tenant  ARGV[7] class  ARGV[8] sending domain  ARGV[9] sending IP
// ARGV[10] code  ARGV[11] example reply  ARGV[12] fix steps (JSON array)  ARGV[13] rule  ARGV[14] ESP
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
    'fix', ARGV[12], 'first_event_id', ARGV[1])
end
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSET', KEYS[1], 'last_seen', now, 'code', ARGV[10], 'example_reply', ARGV[11],
  'rule', ARGV[13], 'esp', ARGV[14], 'last_event_id', ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {0, created, notified(), count}
`)
