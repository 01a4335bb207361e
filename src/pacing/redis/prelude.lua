-- xeroguard: the pacing engine on Redis. This prelude is prepended to every operation's script; the Rust engine
-- (src/pacing/engine.rs, window.rs) is the reference, and a differential test requires identical decisions.
--
-- KEYS: 1 config hash, 2 app-minute log, 3 tenant-minute log, 4 tenant-day log, 5 tenant state hash (block),
--       6 tenant permits (sorted set: member = permit id, score = expiry), 7 the operation's result key.
-- ARGV: 1 operation id ('' for reads), 2 manual clock reading ('' = the server's TIME), 3 the config field of the
--       tenant's own limits ('' for a tenantless call), 4... the operation's own arguments.
--
-- A log is a string: a 16-byte header (u32 base high, u32 base low, u32 head, u32 used) and then u32 millisecond
-- offsets from base, sorted; slots before `head` are dead, slots from `used` on are spare room. It is read by
-- offset (GETRANGE), never copied whole on the common path, and grows by rewriting at its exact size, so a full
-- 5000-call day window costs about 20 KB.
redis.replicate_commands()

local K_CFG, K_AM, K_TM, K_TD, K_TS, K_TP, K_OP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local OP, TENANT_FIELD = ARGV[1], ARGV[3]
local TENANTLESS = TENANT_FIELD == ''
local U32 = 4294967296
local SLACK = 32
local HEADER = 16
local HORIZON = 2147483648
local OP_TTL = 60000
-- Reason codes (vocab.rs).
local R_MINUTE, R_DAY, R_APP, R_CONC = 1, 2, 3, 4

local cf = redis.call('HMGET', K_CFG, 'clock', 'mm', 'mw', 'mg', 'dm', 'dw', 'dg', 'cc', 'am', 'aw', 'ag', 'pt',
  'floor', 'ab', 'abr', TENANTLESS and 'o:' or TENANT_FIELD)
if not cf[1] then
  return redis.error_reply('XG_NOCONFIG the limits of this key prefix are not stored')
end
if (ARGV[2] == '') ~= (cf[1] == 'server') then
  return redis.error_reply('XG_CLOCK_MISMATCH this key prefix runs on the ' .. cf[1] .. ' clock')
end

local function num(v)
  return tonumber(v) or 0
end

local L = {
  minute_window = num(cf[3]), minute_span = num(cf[3]) + num(cf[4]),
  day_window = num(cf[6]), day_span = num(cf[6]) + num(cf[7]),
  app_limit = num(cf[9]), app_window = num(cf[10]), app_span = num(cf[10]) + num(cf[11]),
  permit_timeout = num(cf[12]),
}
-- The scope's limits: the tenant's own, the app's defaults, or none but the app window for tenantless calls.
local TL = { minute = num(cf[2]), day = num(cf[5]), conc = num(cf[8]) }
if TENANTLESS then
  TL = { minute = 0, day = 0, conc = 0 }
elseif cf[16] then
  local m, d, c = string.match(cf[16], '^(%d+),(%d+),(%d+)$')
  TL = { minute = tonumber(m), day = tonumber(d), conc = tonumber(c) }
end

local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[2])
end
local stored_floor = num(cf[13])
-- Time never runs backwards: not after a failover to a host with another clock, not between callers.
if now < stored_floor then now = stored_floor end

local app_block = { tonumber(cf[14]), tonumber(cf[15]) }
local ts = redis.call('HMGET', K_TS, 'bu', 'br')
local tenant_block = { tonumber(ts[1]), tonumber(ts[2]) }

local function commit_floor()
  if now > stored_floor then
    redis.call('HSET', K_CFG, 'floor', now)
    stored_floor = now
  end
end

-- Idempotent retries: a mutation stores its result under its operation id for a while.
local function replay()
  if OP ~= '' then
    local previous = redis.call('GET', K_OP)
    if previous then return cjson.decode(previous) end
  end
  return nil
end

local function remember(result)
  if OP ~= '' then redis.call('SET', K_OP, cjson.encode(result), 'PX', OP_TTL) end
  return result
end

---------------------------------------------------------------------------------------------------------------------
-- Logs: one exact rolling window each (window.rs).

local Log = {}
Log.__index = Log

local function open_log(key)
  local self = setmetatable({ key = key, base = 0, head = 0, used = 0, room = 0, cache = {}, dirty = false }, Log)
  local h = redis.call('GETRANGE', key, 0, HEADER - 1)
  if #h == HEADER then
    local hi, lo, head, used = struct.unpack('>I4>I4>I4>I4', h)
    self.base, self.head, self.used = hi * U32 + lo, head, used
    self.room = (redis.call('STRLEN', key) - HEADER) / 4
  end
  return self
end

function Log:live()
  return self.used - self.head
end

-- The i-th live entry (0-based).
function Log:at(i)
  local v = self.cache[i]
  if v then return v end
  local pos = HEADER + 4 * (self.head + i)
  v = self.base + struct.unpack('>I4', redis.call('GETRANGE', self.key, pos, pos + 3))
  self.cache[i] = v
  return v
end

-- Every live entry, as a 1-based table.
function Log:all()
  local n = self:live()
  local out = {}
  if n == 0 then return out end
  local from = HEADER + 4 * self.head
  local bytes = redis.call('GETRANGE', self.key, from, from + 4 * n - 1)
  for i = 1, n do
    out[i] = self.base + struct.unpack('>I4', bytes, 4 * (i - 1) + 1)
  end
  return out
end

-- How many entries are at or before t.
function Log:count_le(t)
  local n = self:live()
  if n == 0 or self:at(0) > t then return 0 end
  if self:at(n - 1) <= t then return n end
  local lo, hi = 1, n - 1 -- at(lo - 1) <= t < at(hi)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if self:at(mid) <= t then lo = mid + 1 else hi = mid end
  end
  return lo
end

function Log:count_lt(t)
  return self:count_le(t - 1)
end

-- Forgets calls that no window containing an instant >= now can hold.
function Log:prune(span)
  local k = self:count_le(now - span)
  if k > 0 then
    self.head = self.head + k
    self.cache = {}
    self.dirty = true
  end
end

local function with_inserted(all, t, p, i) -- 0-based i over `all` with t inserted at position p
  if i < p then return all[i + 1] elseif i == p then return t else return all[i] end
end

local function admits(all, t, limit, span)
  local n = #all
  if limit == 0 or n < limit then return true end
  local p = 0
  while p < n and all[p + 1] <= t do p = p + 1 end
  local first = math.max(p - limit, 0)
  local last = math.min(p, n - limit)
  for j = first, last do
    if with_inserted(all, t, p, j + limit) - with_inserted(all, t, p, j) < span then return false end
  end
  return true
end

-- The earliest instant >= t at which a call fits (Window::earliest).
function Log:earliest(t, limit, span)
  local n = self:live()
  if limit == 0 or n < limit then return t end
  local p = self:count_le(t)
  local floor = t
  if p >= limit then floor = math.max(t, self:at(p - limit) + span) end
  if p == n then return floor end -- nothing booked ahead: the common case
  local all = self:all()
  if admits(all, floor, limit, span) then return floor end
  -- Fitness changes only where a call leaves a window (e + span) or where t passes a booked call (e).
  local candidates = {}
  for i = 1, n do
    if all[i] + span > floor then candidates[#candidates + 1] = all[i] + span end
    if all[i] > floor then candidates[#candidates + 1] = all[i] end
  end
  table.sort(candidates)
  for _, c in ipairs(candidates) do
    if admits(all, c, limit, span) then return c end
  end
  return all[n] + span
end

-- Calls in the window ending at `at`: (at - span, at].
function Log:count_at(at, span)
  return self:count_le(at) - self:count_le(at - span)
end

function Log:booked_after(at)
  return self:live() - self:count_le(at)
end

-- Moves the live entries to the start of the string, relative to `base`, with room for `extra` more (and SLACK
-- spare). Bytes are moved as they are unless the base changes (every ~49 days of a never-empty log).
function Log:rewrite(base, extra)
  local n = self:live()
  local room = math.max(self.room, n + extra + SLACK)
  if n + extra + SLACK < self.room - 4 * SLACK then room = n + extra + SLACK end -- give back what a purge freed
  local header = struct.pack('>I4>I4>I4>I4', math.floor(base / U32), base % U32, 0, n)
  local body
  if base == self.base then
    local from = HEADER + 4 * self.head
    body = n > 0 and redis.call('GETRANGE', self.key, from, from + 4 * n - 1) or ''
  else
    local parts = {}
    for i, e in ipairs(self:all()) do parts[i] = struct.pack('>I4', e - base) end
    body = table.concat(parts)
  end
  if room == self.room then
    redis.call('SETRANGE', self.key, 0, header .. body) -- same size: no reallocation
  else
    redis.call('SET', self.key, header .. body .. string.rep('\0', 4 * (room - n)))
  end
  self.base, self.head, self.used, self.room, self.cache = base, 0, n, room, {}
end

-- Records k calls at t. Of the calls at or before now, only the newest `cap` are kept (Window::insert).
function Log:insert(t, k, cap)
  if cap == 0 or k == 0 then return end
  local n = self:live()
  local base = self.base
  if n == 0 then base = t elseif t < base or t - base >= U32 then base = math.min(self:at(0), t) end
  if self.used + k > self.room or base ~= self.base then self:rewrite(base, k) end
  local p = self:count_le(t)
  local entry = struct.pack('>I4', t - self.base)
  local from = HEADER + 4 * (self.head + p)
  local tail = ''
  if p < self:live() then tail = redis.call('GETRANGE', self.key, from, HEADER + 4 * self.used - 1) end
  redis.call('SETRANGE', self.key, from, string.rep(entry, k) .. tail)
  self.used = self.used + k
  self.cache = {}
  if self:live() > cap then
    local drop = self:count_le(now) - cap
    if drop > 0 then self.head = self.head + drop end
    self.cache = {}
  end
  self.dirty = true
end

-- Removes one call recorded at t; false when there is none.
function Log:remove(t)
  local p = self:count_lt(t)
  if p >= self:live() or self:at(p) ~= t then return false end
  local from = HEADER + 4 * (self.head + p)
  local tail = redis.call('GETRANGE', self.key, from + 4, HEADER + 4 * self.used - 1)
  if #tail > 0 then redis.call('SETRANGE', self.key, from, tail) end
  self.used = self.used - 1
  self.cache = {}
  self.dirty = true
  return true
end

-- Writes the header back and keeps the key exactly as long as its newest entry can matter; an empty log goes.
function Log:flush(span)
  if not self.dirty then return end
  local n = self:live()
  if n == 0 then
    redis.call('DEL', self.key)
    return
  end
  if self.head > SLACK and self.head > n then
    self:rewrite(self.base, 0)
  else
    redis.call('SETRANGE', self.key, 0, struct.pack('>I4>I4>I4>I4', math.floor(self.base / U32), self.base % U32,
      self.head, self.used))
  end
  redis.call('PEXPIRE', self.key, math.max(self:at(n - 1) + span - now, 1) + 1000)
end

---------------------------------------------------------------------------------------------------------------------
-- One scope's state and the engine's rules (engine.rs).

local AM = open_log(K_AM)
local TM, TD
if TENANTLESS then
  TM, TD = setmetatable({ key = K_TM, base = 0, head = 0, used = 0, room = 0, cache = {}, dirty = false }, Log),
    setmetatable({ key = K_TD, base = 0, head = 0, used = 0, room = 0, cache = {}, dirty = false }, Log)
else
  TM, TD = open_log(K_TM), open_log(K_TD)
end
AM:prune(L.app_span)
TM:prune(L.minute_span)
TD:prune(L.day_span)

-- Expiries of the permits in flight, ascending.
local in_flight = {}
if not TENANTLESS then
  local z = redis.call('ZRANGEBYSCORE', K_TP, '(' .. now, '+inf', 'WITHSCORES')
  for i = 2, #z, 2 do in_flight[#in_flight + 1] = tonumber(z[i]) end
end

local function concurrency_free_at(t)
  local limit = TL.conc
  if limit == 0 then return t end
  local active = {}
  for _, e in ipairs(in_flight) do
    if e > t then active[#active + 1] = e end
  end
  if #active < limit then return t end
  return active[#active - limit + 1]
end

local function block_end(block, t)
  if block[1] and block[1] > t then return block[1] end
  return t
end

-- The earliest instant >= now at which every constraint holds, and the constraint that set it.
local function earliest(with_concurrency)
  local t, reason = now, nil
  while true do
    local candidates = {
      { block_end(app_block, t), app_block[2] },
      { block_end(tenant_block, t), tenant_block[2] },
      { TD:earliest(t, TL.day, L.day_span), R_DAY },
      { AM:earliest(t, L.app_limit, L.app_span), R_APP },
      { TM:earliest(t, TL.minute, L.minute_span), R_MINUTE },
      { with_concurrency and concurrency_free_at(t) or t, R_CONC },
    }
    local next_t, why = t, nil
    for _, c in ipairs(candidates) do
      if c[1] > next_t then next_t, why = c[1], c[2] end
    end
    if next_t == t then return t, reason end
    t, reason = next_t, why
  end
end

local function record_call(at, k)
  TM:insert(at, k, TL.minute)
  TD:insert(at, k, TL.day)
  AM:insert(at, k, L.app_limit)
end

local function flush_logs()
  TM:flush(L.minute_span)
  TD:flush(L.day_span)
  AM:flush(L.app_span)
end

-- Adds the calls the server saw and we did not, at now (engine.rs add_phantoms): seen = limit - remaining.
local function add_phantoms(log, limit, window, remaining)
  if remaining < 0 or limit == 0 then return end
  local seen = math.max(limit - remaining, 0)
  local here = log:count_at(now, window)
  if seen > here then log:insert(now, seen - here, limit) end
end
