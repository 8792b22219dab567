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
//
// Each redis.call costs Redis time on the hot path, once per domain of a batch (about a
// hundred a batch with many domains), so the common case is kept short. The windows
// are counted with ZCOUNT over the window, which is right whether or not older members
// were trimmed yet, so the trim runs for about one call in eight. And the batch script
// tells hold when no hold of the domain can be on (the held-domains index does not name
// it): the two reads of the hold state are skipped then.
//
// holdFunction is the hold script's body as a Lua function of its keys and arguments, so
// that one call can run it for every domain of a batch (holdBatchScript). X is nil for a
// call of one domain; from the batch script it is {idx = the held-domains index, domain
// = the domain's name, listed = whether the index names it}: the hold state is read only
// when listed, and a domain left held is added to the index in the same step, so that
// the index never misses a hold the next batch must see.
const holdFunction = `
local function hold(K, A, X)
local now = tonumber(A[1])
local window = tonumber(A[2])
local dthr = tonumber(A[3])
local tthr = tonumber(A[4])
local ttl = tonumber(A[5])
local k = tonumber(A[6])
local cut = now - window
local after = '(' .. cut
local trim = now % 8 == 0
local check = X == nil or X.listed
if trim then redis.call('ZREMRANGEBYSCORE', K[1], '-inf', cut) end
-- tcnt[j] and dcnt: the count in the window when nothing was added since it was
-- taken, else false (the final count then asks again).
local tname, theld, tnew, tany, tcnt = {}, {}, {}, {}, {}
for j = 1, k do
  tname[j] = A[6 + j]
  if trim then redis.call('ZREMRANGEBYSCORE', K[3 + 2 * j], '-inf', cut) end
  theld[j] = check and redis.call('HEXISTS', K[4], tname[j]) == 1
  tnew[j] = 0
  tany[j] = false
  tcnt[j] = false
end
local dheld = check and redis.call('HGET', K[2], 'held') == '1'
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
    tcnt[j] = redis.call('ZCOUNT', trc, after, '+inf')
    if tcnt[j] >= tthr then
      theld[j] = true
      tnew[j] = 1
      redis.call('HSET', K[4], tname[j], now)
      v = 2
    else
      redis.call('ZADD', K[1], now, m)
      dcnt = redis.call('ZCOUNT', K[1], after, '+inf')
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
local dcount = dcnt or redis.call('ZCOUNT', K[1], after, '+inf')
if dany then
  redis.call('HSET', K[2], 'count', dcount, 'last_seen', now)
  redis.call('PEXPIRE', K[2], ttl)
  redis.call('PEXPIRE', K[3], ttl)
end
local out = {dheld and 1 or 0, dcount, dnew, k}
for j = 1, k do
  local trc = K[3 + 2 * j]
  redis.call('PEXPIRE', trc, window)
  local tcount = tcnt[j] or redis.call('ZCOUNT', trc, after, '+inf')
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
if X ~= nil then
  local any = dheld
  for j = 1, k do any = any or theld[j] end
  if any then redis.call('SADD', X.idx, X.domain) end
end
return out
end
`

var holdScript = redis.NewScript(holdFunction + `return hold(KEYS, ARGV, nil)`)

// holdBatchScript runs hold for every domain of a batch (one or more) in one call: on a
// single Redis or Sentinel, one call per batch instead of one per domain (the per-call
// cost was most of the guard's Redis time with many domains per batch). Not on a
// Cluster, where the domains' keys live in different slots (holdScript runs there).
//
// It reads the held-domains index first: with no domain in it (no mass bounce anywhere,
// the usual case) no domain's hold state is read, otherwise only the listed domains'.
// That is exact because every hold is in the index from the step that starts it (hold
// adds it) until a step that sees it has ended (unindexScript); the index may name a
// domain no longer held, which only costs the reads.
//
// KEYS[1] the held-domains index, then each domain's keys. ARGV[1] n, then n triples
// (domain, number of keys, number of arguments) of each domain's hold call, then every
// call's arguments one after the other. Returns the n results in order.
var holdBatchScript = redis.NewScript(holdFunction + `
local n = tonumber(ARGV[1])
local ki, ai = 2, 2 + 3 * n
local listed = redis.call('SCARD', KEYS[1]) > 0
local res = {}
for d = 1, n do
  local dom, nk, na = ARGV[3 * d - 1], tonumber(ARGV[3 * d]), tonumber(ARGV[3 * d + 1])
  local K, A = {}, {}
  for i = 1, nk do K[i] = KEYS[ki + i - 1] end
  for i = 1, na do A[i] = ARGV[ai + i - 1] end
  ki, ai = ki + nk, ai + na
  local X = {idx = KEYS[1], domain = dom, listed = listed and redis.call('SISMEMBER', KEYS[1], dom) == 1}
  res[d] = hold(K, A, X)
end
return res
`)

// unindexScript removes a domain from the held-domains index when no hold of it is on,
// in one step, so that a hold starting meanwhile is never left out of the index (the
// batch script skips the hold state of domains the index does not name). Single Redis
// or Sentinel only, like holdBatchScript: on a Cluster the index and the domain's keys
// live in different slots, and the index is only the listing's there.
//
// KEYS[1] the index  KEYS[2] the domain's hold state  KEYS[3] its tenant holds
// ARGV[1] the domain. Returns 1 when removed, 0 when a hold is on (it stays).
var unindexScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'held') == '1' then return 0 end
local t = redis.call('HKEYS', KEYS[3])
for _, f in ipairs(t) do
  if not string.find(f, '|', 1, true) then return 0 end
end
redis.call('SREM', KEYS[1], ARGV[1])
return 1
`)
