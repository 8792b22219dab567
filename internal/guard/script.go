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
// holdFunction is the hold script's body as a Lua function of its keys and arguments, so
// that one call can run it for every domain of a batch (holdBatchScript).
const holdFunction = `
local function hold(K, A)
local now = tonumber(A[1])
local window = tonumber(A[2])
local dthr = tonumber(A[3])
local tthr = tonumber(A[4])
local ttl = tonumber(A[5])
local k = tonumber(A[6])
local cut = now - window
redis.call('ZREMRANGEBYSCORE', K[1], '-inf', cut)
-- tcnt[j] and dcnt: the set's size when nothing was added since it was counted, else
-- false (the final count then asks again).
local tname, theld, tnew, tany, tcnt = {}, {}, {}, {}, {}
for j = 1, k do
  tname[j] = A[6 + j]
  redis.call('ZREMRANGEBYSCORE', K[3 + 2 * j], '-inf', cut)
  theld[j] = redis.call('HEXISTS', K[4], tname[j]) == 1
  tnew[j] = 0
  tany[j] = false
  tcnt[j] = false
end
local dheld = redis.call('HGET', K[2], 'held') == '1'
local dnew = 0
local dany = false
local dcnt = false
local verdicts = {}
for i = 7 + k, #A, 3 do
  local j = tonumber(A[i])
  local m = A[i + 1]
  local trc = K[3 + 2 * j]
  local v = 0
  if theld[j] then
    redis.call('ZADD', trc, now, m)
    tcnt[j] = false
    v = 2
  elseif dheld then
    redis.call('ZADD', K[1], now, m)
    dcnt = false
    v = 1
  else
    redis.call('ZADD', trc, now, m)
    tcnt[j] = redis.call('ZCARD', trc)
    if tcnt[j] >= tthr then
      theld[j] = true
      tnew[j] = 1
      redis.call('HSET', K[4], tname[j], now)
      v = 2
    else
      redis.call('ZADD', K[1], now, m)
      dcnt = redis.call('ZCARD', K[1])
      if dcnt >= dthr then
        dheld = true
        dnew = 1
        redis.call('HSET', K[2], 'held', 1, 'since', now)
        v = 1
      end
    end
  end
  if v == 2 then
    redis.call('HSETNX', K[4 + 2 * j], m, A[i + 2])
    tany[j] = true
  elseif v == 1 then
    redis.call('HSETNX', K[3], m, A[i + 2])
    dany = true
  end
  verdicts[#verdicts + 1] = v
end
redis.call('PEXPIRE', K[1], window)
local dcount = dcnt or redis.call('ZCARD', K[1])
if dany then
  redis.call('HSET', K[2], 'count', dcount, 'last_seen', now)
  redis.call('PEXPIRE', K[2], ttl)
  redis.call('PEXPIRE', K[3], ttl)
end
local out = {dheld and 1 or 0, dcount, dnew, k}
for j = 1, k do
  local trc = K[3 + 2 * j]
  redis.call('PEXPIRE', trc, window)
  local tcount = tcnt[j] or redis.call('ZCARD', trc)
  if tany[j] then
    redis.call('HSET', K[4], tname[j] .. '|count', tcount, tname[j] .. '|last', now)
    redis.call('PEXPIRE', K[4], ttl)
    redis.call('PEXPIRE', K[4 + 2 * j], ttl)
  end
  out[#out + 1] = theld[j] and 1 or 0
  out[#out + 1] = tcount
  out[#out + 1] = tnew[j]
end
for _, v in ipairs(verdicts) do out[#out + 1] = v end
return out
end
`

var holdScript = redis.NewScript(holdFunction + `return hold(KEYS, ARGV)`)

// holdBatchScript runs hold for several domains in one call: on a single Redis or
// Sentinel, one call per batch instead of one per domain (the per-call cost was most of
// the guard's Redis time with many domains per batch). Not on a Cluster, where the
// domains' keys live in different slots.
//
// ARGV[1] n, then n pairs (number of keys, number of arguments) of each domain's hold
// call, then every call's arguments one after the other; KEYS likewise. Returns the n
// results in order.
var holdBatchScript = redis.NewScript(holdFunction + `
local n = tonumber(ARGV[1])
local ki, ai = 1, 2 + 2 * n
local res = {}
for d = 1, n do
  local nk, na = tonumber(ARGV[2 * d]), tonumber(ARGV[2 * d + 1])
  local K, A = {}, {}
  for i = 1, nk do K[i] = KEYS[ki + i - 1] end
  for i = 1, na do A[i] = ARGV[ai + i - 1] end
  ki, ai = ki + nk, ai + na
  res[d] = hold(K, A)
end
return res
`)
