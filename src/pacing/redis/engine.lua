-- xeroguard: the windows, blocks and permits on Redis (engine.rs, window.rs), after prelude.lua in every script
-- that reads them.
--
-- A log is a string: a 40-byte header (u32s: base high, base low, head, used, room, first, last, expiry high,
-- expiry low, spare) and then u32 millisecond offsets from base, sorted; slots before `head` are dead, slots from
-- `used` to `room` are spare. The header carries the first and last live entries and when the key's TTL ends, so
-- the common decision reads one header per log and nothing else. Entries are read by offset (GETRANGE), never
-- copied whole on the common path; the string grows by rewriting at its exact size, so a full 5000-call day
-- window costs about 20 KB.

local U32 = 4294967296
local SLACK = 32
local HEADER = 40
-- A log's TTL is extended by up to this much beyond what it needs (never more than its window), so it is
-- refreshed about once a minute, not on every call.
local TTL_SLACK = 60000
local HORIZON = 2147483648
-- Reason codes (vocab.rs).
local R_MINUTE, R_DAY, R_APP, R_CONC = 1, 2, 3, 4

-- The limits (init.lua): minute limit, window, margin; day limit, window, margin; concurrency; app-minute limit,
-- window, margin; permit timeout. One match, not gmatch: it costs half as much, on every call. Not anchored at the
-- end, so a later version may append fields.
local lim = { string.match(cf[2], '^(%d+),(%d+),(%d+),(%d+),(%d+),(%d+),(%d+),(%d+),(%d+),(%d+),(%d+)') }
for i = 1, 11 do lim[i] = tonumber(lim[i]) end
local L = {
  minute_window = lim[2], minute_span = lim[2] + lim[3],
  day_window = lim[5], day_span = lim[5] + lim[6],
  app_limit = lim[8], app_window = lim[9], app_span = lim[9] + lim[10],
  permit_timeout = lim[11],
}
-- The scope's limits: the tenant's own, the app's defaults, or none but the app window for tenantless calls.
local TL = { minute = lim[1], day = lim[4], conc = lim[7] }
if TENANTLESS then
  TL = { minute = 0, day = 0, conc = 0 }
elseif cf[6] then
  local m, d, c = string.match(cf[6], '^(%d+),(%d+),(%d+)$')
  TL = { minute = tonumber(m), day = tonumber(d), conc = tonumber(c) }
end

local app_block = { tonumber(cf[4]), tonumber(cf[5]) }
-- Filled by open_scope(): the tenant's block, its logs and the app's, and the permits in flight.
local tenant_block, AM, TM, TD
local in_flight = {}

---------------------------------------------------------------------------------------------------------------------
-- Logs: one exact rolling window each (window.rs).

local Log = {}
Log.__index = Log

local function empty_log(key)
  return setmetatable({ key = key, base = 0, head = 0, used = 0, room = 0, expiry = 0, cache = {}, dirty = false },
    Log)
end

local function open_log(key)
  local self = empty_log(key)
  local h = redis.call('GETRANGE', key, 0, HEADER - 1)
  if #h == HEADER then
    local hi, lo, head, used, room, first, last, ehi, elo = struct.unpack('>I4>I4>I4>I4>I4>I4>I4>I4>I4', h)
    self.base, self.head, self.used, self.room, self.expiry = hi * U32 + lo, head, used, room, ehi * U32 + elo
    if used > head then
      self.cache[0] = self.base + first
      self.cache[used - head - 1] = self.base + last
    end
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

-- Keeps what is known of the entries from live index `from` on, renumbered from `to` (after slots move).
function Log:recache(from, to)
  local old = self.cache
  self.cache = {}
  for i, v in pairs(old) do
    if i < math.min(from, to) then
      self.cache[i] = v
    elseif i >= from then
      self.cache[i - from + to] = v
    end
  end
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

-- Forgets calls that no window containing an instant >= now can hold. Usually one or two leave per call, so
-- the search gallops from the front instead of bisecting the whole log.
function Log:prune(span)
  local edge, n = now - span, self:live()
  if n == 0 or self:at(0) > edge then return end
  local k
  if self:at(n - 1) <= edge then
    k = n
  else
    local lo, step = 0, 1 -- at(lo) <= edge
    while lo + step < n - 1 and self:at(lo + step) <= edge do
      lo = lo + step
      step = step * 2
    end
    local hi = math.min(lo + step, n - 1) -- at(hi) > edge
    while hi - lo > 1 do
      local mid = math.floor((lo + hi) / 2)
      if self:at(mid) <= edge then lo = mid else hi = mid end
    end
    k = hi
  end
  self.head = self.head + k
  self:recache(k, 0)
  self.dirty = true
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
-- spare; `cap` is the window's limit). Bytes are moved as they are unless the base changes (every ~49 days of a
-- never-empty log).
function Log:rewrite(base, extra, cap)
  local n = self:live()
  local need, room = n + extra + SLACK, self.room
  if need > room then
    -- Doubling while below the window's limit: few rewrites on the way up, and a full window holds its limit plus
    -- SLACK slots, no more (bookings beyond the limit grow it one SLACK at a time).
    room = math.max(need, math.min(2 * room, (cap or 0) + SLACK))
  elseif need < room - 4 * SLACK then
    room = need -- give back what a purge freed
  end
  local header = string.rep('\0', HEADER) -- written by flush
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
    redis.call('SETRANGE', self.key, HEADER, body) -- same size: no reallocation
  else
    redis.call('SET', self.key, header .. body .. string.rep('\0', 4 * (room - n)))
    self.expiry = 0 -- SET dropped the TTL
  end
  -- The cache holds instants by live index, which neither a move nor a new base changes.
  self.base, self.head, self.used, self.room = base, 0, n, room
end

-- Records k calls at t. Of the calls at or before now, only the newest `cap` are kept (Window::insert).
function Log:insert(t, k, cap)
  if cap == 0 or k == 0 then return end
  local n = self:live()
  local base = self.base
  if n == 0 then base = t elseif t < base or t - base >= U32 then base = math.min(self:at(0), t) end
  if self.used + k > self.room or base ~= self.base then self:rewrite(base, k, cap) end
  local p = self:count_le(t)
  local entry = struct.pack('>I4', t - self.base)
  local from = HEADER + 4 * (self.head + p)
  local tail = ''
  if p < self:live() then tail = redis.call('GETRANGE', self.key, from, HEADER + 4 * self.used - 1) end
  redis.call('SETRANGE', self.key, from, string.rep(entry, k) .. tail)
  self:recache(p, p + k)
  for i = p, p + k - 1 do self.cache[i] = t end
  self.used = self.used + k
  if self:live() > cap then
    local drop = self:count_le(now) - cap
    if drop > 0 then
      self.head = self.head + drop
      self:recache(drop, 0)
    end
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
  self:recache(p + 1, p)
  self.used = self.used - 1
  self.dirty = true
  return true
end

-- Writes the header back and keeps the key as long as its newest entry can matter (and at most TTL_SLACK
-- longer); an empty log goes.
function Log:flush(span)
  if not self.dirty then return end
  local n = self:live()
  if n == 0 then
    redis.call('DEL', self.key)
    return
  end
  if self.head > SLACK and self.head > n then self:rewrite(self.base, 0) end
  local needed = self:at(n - 1) + span + 1000
  if self.expiry < needed then
    self.expiry = needed + math.min(TTL_SLACK, span)
    redis.call('PEXPIRE', self.key, self.expiry - now)
  end
  redis.call('SETRANGE', self.key, 0, struct.pack('>I4>I4>I4>I4>I4>I4>I4>I4>I4>I4', math.floor(self.base / U32),
    self.base % U32, self.head, self.used, self.room, self:at(0) - self.base, self:at(n - 1) - self.base,
    math.floor(self.expiry / U32), self.expiry % U32, 0))
end

---------------------------------------------------------------------------------------------------------------------
-- One scope's state and the engine's rules (engine.rs).

-- Reads what a decision needs, pruned to now (an operation that needs none of it, release, never calls this).
-- Returns whether expired permits are stored (for the grant to purge them).
local function open_scope()
  local ts = redis.call('HMGET', K_TS, 'bu', 'br')
  tenant_block = { tonumber(ts[1]), tonumber(ts[2]) }
  AM = open_log(K_AM)
  if TENANTLESS then
    TM, TD = empty_log(K_TM), empty_log(K_TD)
  else
    TM, TD = open_log(K_TM), open_log(K_TD)
  end
  AM:prune(L.app_span)
  TM:prune(L.minute_span)
  TD:prune(L.day_span)
  local expired = false
  if not TENANTLESS then
    -- Every permit with its expiry, ascending; those still live are the ones in flight.
    local z = redis.call('ZRANGEBYSCORE', K_TP, '-inf', '+inf', 'WITHSCORES')
    for i = 2, #z, 2 do
      local e = tonumber(z[i])
      if e > now then in_flight[#in_flight + 1] = e else expired = true end
    end
  end
  return expired
end

-- When the in-flight count drops below the limit by expiry alone. `in_flight` is ascending, so the permits that
-- outlive t are a suffix, and the limit-th latest of them is the limit-th latest of all.
local function concurrency_free_at(t)
  local limit, n = TL.conc, #in_flight
  if limit == 0 or n < limit or in_flight[n - limit + 1] <= t then return t end
  return in_flight[n - limit + 1]
end

local function block_end(block, t)
  if block[1] and block[1] > t then return block[1] end
  return t
end

-- The earliest instant >= now at which every constraint holds, and the constraint that set it. In priority order:
-- on a tie the first named is the reason reported. (Written out, not looped over a table: tables cost here.)
local function earliest(with_concurrency)
  local t, reason = now, nil
  while true do
    local next_t, why = t, nil
    local c = block_end(app_block, t)
    if c > next_t then next_t, why = c, app_block[2] end
    c = block_end(tenant_block, t)
    if c > next_t then next_t, why = c, tenant_block[2] end
    c = TD:earliest(t, TL.day, L.day_span)
    if c > next_t then next_t, why = c, R_DAY end
    c = AM:earliest(t, L.app_limit, L.app_span)
    if c > next_t then next_t, why = c, R_APP end
    c = TM:earliest(t, TL.minute, L.minute_span)
    if c > next_t then next_t, why = c, R_MINUTE end
    if with_concurrency then
      c = concurrency_free_at(t)
      if c > next_t then next_t, why = c, R_CONC end
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
