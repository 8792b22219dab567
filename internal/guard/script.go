package guard

import "github.com/redis/go-redis/v9"

// holdScript counts a batch's new suppressions of one receiving domain, one change
// after the other in event order, and holds those that come once a threshold is
// crossed — so the outcome does not depend on how the events were cut into batches.
// For each change of tenant t:
//
//   - t's hold of the domain is on: held by it (t's recipients keep counting, for recovery);
//   - else the domain-wide hold is on: held by it (counted in the domain's recipients);
//   - else it counts into t's recipients; the one that brings them to the tenant
//     threshold starts t's hold and is held;
//   - else it counts into the domain's recipients; the one that brings them to the
//     domain threshold starts the domain-wide hold and is held;
//   - else it is applied (the caller writes it).
//
// KEYS[1] domain recipients   KEYS[2] domain-wide state   KEYS[3] domain-wide pending
// KEYS[4] tenant holds        KEYS[3+2j], KEYS[4+2j] tenant j's recipients and pending (j = 1..k)
// ARGV[1] now (ms)  ARGV[2] window (ms)  ARGV[3] domain threshold  ARGV[4] tenant threshold
// ARGV[5] TTL of a hold's keys (ms)  ARGV[6] k  ARGV[7..6+k] the tenants' names
// ARGV[7+k..] triples (tenant index j, member "namespace|address", held change JSON)
//
// Returns {domain held 0|1, domain recipients in the window, domain newly held 0|1, k,
// then per tenant {held 0|1, recipients in the window, newly held 0|1},
// then per change its verdict: 0 applied, 1 held by the domain-wide hold, 2 by its tenant's}.
// Running it twice for the same changes adds nothing (ZADD and HSETNX), which makes the
// NOSCRIPT fallback and a redelivered batch safe; a rerun after the hold started holds
// the changes that came before the threshold too (the safe side: held, not lost).
var holdScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local dthr = tonumber(ARGV[3])
local tthr = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local k = tonumber(ARGV[6])
local cut = now - window
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cut)
local tname, theld, tnew, tany = {}, {}, {}, {}
for j = 1, k do
  tname[j] = ARGV[6 + j]
  redis.call('ZREMRANGEBYSCORE', KEYS[3 + 2 * j], '-inf', cut)
  theld[j] = redis.call('HEXISTS', KEYS[4], tname[j]) == 1
  tnew[j] = 0
  tany[j] = false
end
local dheld = redis.call('HGET', KEYS[2], 'held') == '1'
local dnew = 0
local dany = false
local verdicts = {}
for i = 7 + k, #ARGV, 3 do
  local j = tonumber(ARGV[i])
  local m = ARGV[i + 1]
  local trc = KEYS[3 + 2 * j]
  local v = 0
  if theld[j] then
    redis.call('ZADD', trc, now, m)
    v = 2
  elseif dheld then
    redis.call('ZADD', KEYS[1], now, m)
    v = 1
  else
    redis.call('ZADD', trc, now, m)
    if redis.call('ZCARD', trc) >= tthr then
      theld[j] = true
      tnew[j] = 1
      redis.call('HSET', KEYS[4], tname[j], now)
      v = 2
    else
      redis.call('ZADD', KEYS[1], now, m)
      if redis.call('ZCARD', KEYS[1]) >= dthr then
        dheld = true
        dnew = 1
        redis.call('HSET', KEYS[2], 'held', 1, 'since', now)
        v = 1
      end
    end
  end
  if v == 2 then
    redis.call('HSETNX', KEYS[4 + 2 * j], m, ARGV[i + 2])
    tany[j] = true
  elseif v == 1 then
    redis.call('HSETNX', KEYS[3], m, ARGV[i + 2])
    dany = true
  end
  verdicts[#verdicts + 1] = v
end
redis.call('PEXPIRE', KEYS[1], window)
local dcount = redis.call('ZCARD', KEYS[1])
if dany then
  redis.call('HSET', KEYS[2], 'count', dcount, 'last_seen', now)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
local out = {dheld and 1 or 0, dcount, dnew, k}
for j = 1, k do
  local trc = KEYS[3 + 2 * j]
  redis.call('PEXPIRE', trc, window)
  local tcount = redis.call('ZCARD', trc)
  if tany[j] then
    redis.call('HSET', KEYS[4], tname[j] .. '|count', tcount, tname[j] .. '|last', now)
    redis.call('PEXPIRE', KEYS[4], ttl)
    redis.call('PEXPIRE', KEYS[4 + 2 * j], ttl)
  end
  out[#out + 1] = theld[j] and 1 or 0
  out[#out + 1] = tcount
  out[#out + 1] = tnew[j]
end
for _, v in ipairs(verdicts) do out[#out + 1] = v end
return out
`)
