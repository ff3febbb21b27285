package redisstore

import "github.com/redis/go-redis/v9"

// Lua scripts. They run atomically on the Redis that owns their keys, use
// Redis's own clock (TIME) so that every replica of Tollgate agrees on the
// time, and are sent once with EVAL and afterwards by SHA (EVALSHA; a
// NOSCRIPT after a Redis restart or SCRIPT FLUSH falls back to EVAL, which
// loads the script again).
//
// A bucket is a hash {t = tokens, ts = µs of Redis time when t was
// computed}. Its PEXPIRE is the time it takes to fill up again (plus a
// second): an expired bucket and a full one are the same thing, so idle
// buckets cost no memory. Numbers travel as strings ('%.17g') because Redis
// truncates Lua numbers to integers in replies.

// luaPrelude: on Redis < 5 a script that calls TIME must switch to effects
// replication before writing; from Redis 5 on that is the default and from
// 7 the call is a no-op, kept for the old servers.
const luaPrelude = `
if redis.replicate_commands then redis.replicate_commands() end
local function num(x) return string.format('%.17g', x) end
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- refill returns the bucket's balance at now and the time it refers to:
-- a missing bucket is full; Capacity/Window per µs since ts, up to
-- Capacity; a clock that stepped back (failover) adds nothing.
local function refill(key, cap, win, now)
  local st = redis.call('HMGET', key, 't', 'ts')
  local tk, at = tonumber(st[1]), tonumber(st[2])
  if tk == nil or at == nil then return cap, now end
  if now > at then
    tk = tk + (now - at) * cap / win
    at = now
  end
  if tk > cap then tk = cap end
  return tk, at
end
local function save(key, tk, at, cap, win)
  redis.call('HSET', key, 't', num(tk), 'ts', num(at))
  redis.call('PEXPIRE', key, math.ceil((cap - tk) * win / cap / 1000) + 1000)
end
`

// admitScript: the request path's single round trip.
//
//	KEYS[1..n]    cache slot keys (n = ARGV[1], may be 0)
//	KEYS[n+1..]   bucket keys
//	ARGV[1] n, ARGV[2] pick (0-based slot returned on a hit),
//	then per bucket: capacity, window µs, cost
//
// Reply: {hit, slot, entry|nil, filled, per bucket: allowed, remaining, wait µs}.
// A hit (every slot filled) returns one slot and leaves the buckets
// untouched; otherwise all buckets are checked first and each takes its
// cost only if all admit.
const admitSrc = luaPrelude + `
local n = tonumber(ARGV[1])
local hit, slot, entry, filled = 0, -1, false, 0
if n > 0 then
  filled = redis.call('EXISTS', unpack(KEYS, 1, n))
  if filled == n then
    slot = tonumber(ARGV[2])
    entry = redis.call('GET', KEYS[slot + 1])
    hit = 1
  end
end
local out = {hit, slot, entry, filled}
local nb = #KEYS - n
if nb == 0 then return out end
local now = now_us()
local tks, ats, all = {}, {}, true
for i = 1, nb do
  local a = 2 + (i - 1) * 3
  local cap, win, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  tks[i], ats[i] = refill(KEYS[n + i], cap, win, now)
  if not (tks[i] > 0 and tks[i] >= cost) then all = false end
end
for i = 1, nb do
  local a = 2 + (i - 1) * 3
  local cap, win, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local tk = tks[i]
  local allowed = 0
  if tk > 0 and tk >= cost then allowed = 1 end
  if all and hit == 0 then
    tk = tk - cost
    save(KEYS[n + i], tk, ats[i], cap, win)
  end
  local wait = 0
  if not (tk > 0 and tk >= cost) then
    local deficit = cost - tk
    if cost <= 0 then deficit = -tk end
    wait = math.max(1, math.ceil(deficit * win / cap))
  end
  out[#out + 1] = allowed
  out[#out + 1] = num(tk)
  out[#out + 1] = num(wait)
end
return out
`

var admitScript = redis.NewScript(admitSrc)

// chargeScript takes the real cost of a call after it (may go negative).
//
//	KEYS[1] bucket; ARGV capacity, window µs, amount. Reply: balance.
var chargeScript = redis.NewScript(luaPrelude + `
local cap, win, amount = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tk, at = refill(KEYS[1], cap, win, now_us())
tk = tk - amount
save(KEYS[1], tk, at, cap, win)
return num(tk)
`)

// fillScript stores an entry in the first empty slot.
//
//	KEYS slot keys in order; ARGV entry, ttl ms. Reply: slot (0-based) or -1.
var fillScript = redis.NewScript(`
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2], 'NX') then return i - 1 end
end
return -1
`)
