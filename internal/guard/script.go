package guard

import "github.com/redis/go-redis/v9"

// holdScript counts new suppressions of one receiving domain and, once too many
// distinct recipients of it were suppressed within the window, holds them instead.
//
// KEYS[1] recipients set   KEYS[2] guard state hash   KEYS[3] pending hash
// ARGV[1] now (ms)  ARGV[2] window (ms)  ARGV[3] threshold  ARGV[4] pending TTL (ms)
// ARGV[5..] pairs of (member "namespace|address", held change JSON)
//
// Returns {held 0|1, distinct recipients in the window, newly held 0|1}. Running it
// twice for the same recipients changes nothing more (ZADD and HSETNX), which makes the
// NOSCRIPT fallback and a redelivered batch safe.
var holdScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
for i = 5, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], now, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window)
local count = redis.call('ZCARD', KEYS[1])
local held = redis.call('HGET', KEYS[2], 'held') == '1'
local newly = 0
if not held and count >= tonumber(ARGV[3]) then
  held = true
  newly = 1
  redis.call('HSET', KEYS[2], 'held', 1, 'since', now)
end
if not held then return {0, count, 0} end
for i = 5, #ARGV, 2 do
  redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i+1])
end
redis.call('HSET', KEYS[2], 'count', count, 'last_seen', now)
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return {1, count, newly}
`)
