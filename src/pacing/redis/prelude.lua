-- xeroguard: the pacing engine on Redis. This prelude begins every operation's script; engine.lua follows it in
-- every one but release, which reads no window and so does not pay for parsing the limits or defining the engine's
-- functions. The Rust engine (src/pacing/engine.rs, window.rs) is the reference, and a differential test requires
-- identical decisions.
--
-- KEYS: 1 config hash, 2 app-minute log, 3 tenant-minute log, 4 tenant-day log, 5 tenant state hash (block),
--       6 tenant permits (sorted set: member = permit id, score = expiry), 7 the operation's result key.
-- ARGV: 1 operation id ('' for reads), 2 manual clock reading ('' = the server's TIME), 3 the config field of the
--       tenant's own limits ('' for a tenantless call), 4... the operation's own arguments.
redis.replicate_commands()

local K_CFG, K_AM, K_TM, K_TD, K_TS, K_TP, K_OP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local OP, TENANT_FIELD = ARGV[1], ARGV[3]
local TENANTLESS = TENANT_FIELD == ''
local OP_TTL = 60000

local cf = redis.call('HMGET', K_CFG, 'clock', 'lim', 'floor', 'ab', 'abr', TENANTLESS and 'o:' or TENANT_FIELD)
if not cf[1] then
  return redis.error_reply('XG_NOCONFIG the limits of this key prefix are not stored')
end
if (ARGV[2] == '') ~= (cf[1] == 'server') then
  return redis.error_reply('XG_CLOCK_MISMATCH this key prefix runs on the ' .. cf[1] .. ' clock')
end

local function num(v)
  return tonumber(v) or 0
end

local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[2])
end
local stored_floor = num(cf[3])
-- Time never runs backwards: not after a failover to a host with another clock, not between callers.
if now < stored_floor then now = stored_floor end

-- On the server's clock the floor only guards against a clock that steps back (a failover): keeping it within a
-- second is enough, and saves a write per call. A manual clock keeps it exact.
local FLOOR_SLACK = ARGV[2] == '' and 1000 or 0
local function commit_floor()
  if now > stored_floor + FLOOR_SLACK then
    redis.call('HSET', K_CFG, 'floor', now)
    stored_floor = now
  end
end

-- Idempotent retries: a mutation stores its result under its operation id for a while, and a retry (its id
-- prefixed 'r:') is answered from it when the first attempt ran.
local function replay()
  if string.sub(OP, 1, 2) == 'r:' then
    local previous = redis.call('GET', K_OP)
    if previous then return cjson.decode(previous) end
  end
  return nil
end

local function remember(result)
  if OP ~= '' then redis.call('SET', K_OP, cjson.encode(result), 'PX', OP_TTL) end
  return result
end

