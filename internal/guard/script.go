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
// holdFunction is the hold script's body as a Lua function, so that one call can run it
// for every domain of a batch (holdBatchScript). It reads its keys and arguments in
// place, KEYS[kb + i] and ARGV[ab + i] for the K[i] and A[i] above (na arguments), and
// appends its results to out: per domain, no table is built but out itself and the
// scratch table tany, both reused across the batch's domains. (Building a domain's key
// and argument tables and ten small result and state tables took more Redis time than
// the domain's own commands: about 20 µs of Lua per suppression against 9.5 µs of
// commands, measured with BenchmarkHoldBatch.)
//
// Until the end, out holds the tenants' state in their result slots: tenant j's held
// 0|1, its count in the window (-1 when something was added since it was taken: the
// final count then asks again) and newly held 0|1. idx is the held-domains index and
// domain the domain's name when called from the batch script (nil otherwise); listed
// says whether the hold state must be read: from the batch script, whether the index
// names the domain. A domain left held is added to the index in the same step, so that
// the index never misses a hold the next batch must see.
const holdFunction = `
local function hold(kb, ab, na, idx, domain, listed, out, tany)
local now = tonumber(ARGV[ab + 1])
local window = tonumber(ARGV[ab + 2])
local dthr = tonumber(ARGV[ab + 3])
local tthr = tonumber(ARGV[ab + 4])
local ttl = tonumber(ARGV[ab + 5])
local k = tonumber(ARGV[ab + 6])
local cut = now - window
local after = '(' .. cut
local trim = now % 8 == 0
local drc = KEYS[kb + 1]
if trim then redis.call('ZREMRANGEBYSCORE', drc, '-inf', cut) end
local base = #out
out[base + 1] = 0
out[base + 2] = 0
out[base + 3] = 0
out[base + 4] = k
local tb = base + 4
for j = 1, k do
  if trim then redis.call('ZREMRANGEBYSCORE', KEYS[kb + 3 + 2 * j], '-inf', cut) end
  out[tb + 3 * j - 2] = (listed and redis.call('HEXISTS', KEYS[kb + 4], ARGV[ab + 6 + j]) == 1) and 1 or 0
  out[tb + 3 * j - 1] = -1
  out[tb + 3 * j] = 0
  tany[j] = false
end
local dheld = listed and redis.call('HGET', KEYS[kb + 2], 'held') == '1'
local dnew = 0
local dany = false
local dcnt = -1
for i = ab + 7 + k, ab + na, 3 do
  local j = tonumber(ARGV[i])
  local m = ARGV[i + 1]
  local ts = tb + 3 * j
  local trc = KEYS[kb + 3 + 2 * j]
  local v = 0
  if out[ts - 2] == 1 then
    redis.call('ZADD', trc, now, m)
    out[ts - 1] = -1
    v = 2
  elseif dheld then
    redis.call('ZADD', drc, now, m)
    dcnt = -1
    v = 1
  else
    redis.call('ZADD', trc, now, m)
    local c = redis.call('ZCOUNT', trc, after, '+inf')
    out[ts - 1] = c
    if c >= tthr then
      out[ts - 2] = 1
      out[ts] = 1
      redis.call('HSET', KEYS[kb + 4], ARGV[ab + 6 + j], now)
      v = 2
    else
      redis.call('ZADD', drc, now, m)
      dcnt = redis.call('ZCOUNT', drc, after, '+inf')
      if dcnt >= dthr then
        dheld = true
        dnew = 1
        redis.call('HSET', KEYS[kb + 2], 'held', 1, 'since', now)
        v = 1
      end
    end
  end
  if v == 2 then
    redis.call('HSETNX', KEYS[kb + 4 + 2 * j], m, ARGV[i + 2])
    tany[j] = true
  elseif v == 1 then
    redis.call('HSETNX', KEYS[kb + 3], m, ARGV[i + 2])
    dany = true
  end
  out[#out + 1] = v
end
redis.call('PEXPIRE', drc, window)
if dcnt < 0 then dcnt = redis.call('ZCOUNT', drc, after, '+inf') end
if dany then
  redis.call('HSET', KEYS[kb + 2], 'count', dcnt, 'last_seen', now)
  redis.call('PEXPIRE', KEYS[kb + 2], ttl)
  redis.call('PEXPIRE', KEYS[kb + 3], ttl)
end
out[base + 1] = dheld and 1 or 0
out[base + 2] = dcnt
out[base + 3] = dnew
local any = dheld
for j = 1, k do
  local trc = KEYS[kb + 3 + 2 * j]
  local ts = tb + 3 * j
  redis.call('PEXPIRE', trc, window)
  if out[ts - 1] < 0 then out[ts - 1] = redis.call('ZCOUNT', trc, after, '+inf') end
  if tany[j] then
    local name = ARGV[ab + 6 + j]
    redis.call('HSET', KEYS[kb + 4], name .. '|count', out[ts - 1], name .. '|last', now)
    redis.call('PEXPIRE', KEYS[kb + 4], ttl)
    redis.call('PEXPIRE', KEYS[kb + 4 + 2 * j], ttl)
  end
  any = any or out[ts - 2] == 1
end
if idx ~= nil and any then redis.call('SADD', idx, domain) end
end
`

var holdScript = redis.NewScript(holdFunction + `local out = {} hold(0, 0, #ARGV, nil, nil, true, out, {}) return out`)

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
// call's arguments one after the other. Returns the n results one after the other in
// one flat array (each 4 + 3k + its changes long: the caller knows where each begins).
var holdBatchScript = redis.NewScript(holdFunction + `
local n = tonumber(ARGV[1])
local kb, ab = 1, 1 + 3 * n
local listed = redis.call('SCARD', KEYS[1]) > 0
local out, tany = {}, {}
for d = 1, n do
  local dom, nk, na = ARGV[3 * d - 1], tonumber(ARGV[3 * d]), tonumber(ARGV[3 * d + 1])
  hold(kb, ab, na, KEYS[1], dom, listed and redis.call('SISMEMBER', KEYS[1], dom) == 1, out, tany)
  kb, ab = kb + nk, ab + na
end
return out
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
