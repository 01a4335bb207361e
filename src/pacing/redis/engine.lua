-- xeroguard: the pacing engine on Redis. The Rust engine (src/pacing/engine.rs, window.rs) is the reference: the
-- functions below mirror it function for function, with the same names and algorithms, and a differential test
-- requires identical decisions. The shared numbers (reason codes, horizon, caps, grace and slack, format version)
-- come first, generated from Rust by build.rs; the operations (acquire.lua, ...) follow, each an entry of OPS.
-- Loaded once as a Redis Functions library on Redis 7 (the functions are defined once, not on every call), or sent
-- as one script per operation (EVALSHA) where Functions are not available.
--
-- KEYS: 1 config hash, 2 app key (app header + app-minute log), 3 tenant key (tenant header + minute log), 4
--       tenant day log, 5 tenant permits (sorted set: member = permit id, score = expiry), 6 the result key.
-- ARGV: 1 operation id ('' for reads; 'r:<id>' on a retry), 2 manual clock reading ('' = the server's TIME), 3
--       the config field of the tenant's own limits ('' for a tenantless call), 4 how long a result key lives
--       (ms), 5... the operation's own arguments.
--
-- Storage. A log is the sorted instants of one window, as 4-byte offsets from a base instant, in three parts: the
-- past calls in a ring (oldest first), the newest past calls in a small tail held in the header, and the bookings
-- (after now) in a region after the ring. The header also caches the first ring entries. So the common call reads
-- one header per key and writes it back, and touches the entries only every TAIL calls (a flush) or FRONT calls
-- (a refill); the bookings are read only when some exist. A key holds its header and one log: the app key the app
-- log, the tenant key the minute log; the day log (20 KB when full) has a key of its own.

local U32 = 4294967296
-- Entries held in a log's header: newest past calls not yet in the ring, and copies of the oldest ring entries.
local TAIL, FRONT = 8, 8
-- Entries read at once when a search needs the ring or the bookings.
local BLOCK = 64
-- The smallest ring or bookings region allocated.
local MIN_ROOM = 8
-- Permits: a member that keeps the sorted set (and its TTL) alive when every permit is released; never in flight.
local SENTINEL = '-'

-- A log's header: base, ring room, ring start, ring count, bookings room, bookings start, bookings count, first
-- booking and newest past entry (offsets), tail count, cached front count; then TAIL and FRONT entries.
local LOG_FMT = '>dI4I4I4I4I4I4I4I4BB'
local LOG_FIXED, LOG_BYTES
-- The tenant key's header: format, block until, block reason, override generation seen, override minute, day,
-- concurrency, override set, permits key expiry, tenant keys' expiry; then the minute log and the day log.
local TEN_FMT = '>BdBdI4I4I4Bdd'
local TEN_FIXED, T_HDR
-- The app key's header: format, clock (1 server, 2 manual), the limits, when the config was last read, the time
-- floor, the floor last saved to the config, app block until, reason, override generation, key expiry; then the
-- app-minute log.
local APP_FMT, APP_FIXED, A_HDR
local LIMITS_PATTERN

-- Per call: the keys, the operation, the clock reading, the app header (A), the tenant header (T), the scope's
-- limits (TL), the logs (AM app minute, TM tenant minute, TD tenant day) and what is known of the permits (P).
local K_CFG, K_APP, K_TEN, K_DAY, K_PRM, K_RES
local OP, ECHO, RETRY, FIELD, TENANTLESS, MANUAL, RESULT_TTL
local now
local A, T, TL, AM, TM, TD, P
local L = {}

-- A Functions library sees no global but `redis` while it loads: what the top level would take from the Lua
-- libraries is taken at the first call instead.
local max, min, floor, pack, sunpack
local function setup()
  if pack then return end
  max, min, floor, pack, sunpack = math.max, math.min, math.floor, struct.pack, struct.unpack
  APP_FMT = '>BB' .. string.rep('d', LIMIT_FIELDS) .. 'ddddBdd'
  LOG_FIXED = struct.size(LOG_FMT)
  LOG_BYTES = LOG_FIXED + 4 * (TAIL + FRONT)
  TEN_FIXED = struct.size(TEN_FMT)
  T_HDR = TEN_FIXED + 2 * LOG_BYTES
  APP_FIXED = struct.size(APP_FMT)
  A_HDR = APP_FIXED + LOG_BYTES
  LIMITS_PATTERN = '^' .. string.rep('(%d+),', LIMIT_FIELDS - 1) .. '(%d+)'
end

local function fail(text)
  error({ err = text })
end

local function u32_at(bytes, i)
  return (sunpack('>I4', bytes, 4 * i + 1))
end

local function zeros(entries)
  return string.rep('\0\0\0\0', entries)
end

---------------------------------------------------------------------------------------------------------------------
-- Logs: storage.

local Log = {}
Log.__index = Log

-- The log whose header starts at byte `at` (1-based) of `header` (nil: an empty log), its entries in `key` from
-- byte `body`.
local function read_log(key, body, header, at)
  local self = setmetatable({ key = key, body = body, blocks = {}, fblocks = {}, dirty = false, grew_to = nil,
    rewritten = false }, Log)
  if header then
    local base, pr, ps, pn, fr, fs, fnum, ff, pl, tn, cn = sunpack(LOG_FMT, header, at)
    self.base, self.pr, self.ps, self.pn, self.fr, self.fs, self.fnum, self.ff = base, pr, ps, pn, fr, fs, fnum, ff
    self.pl = pl
    local t0 = at + LOG_FIXED
    self.tn, self.tail = tn, string.sub(header, t0, t0 + 4 * tn - 1)
    local c0 = t0 + 4 * TAIL
    self.cn, self.front = cn, string.sub(header, c0, c0 + 4 * cn - 1)
  else
    self.base, self.pr, self.ps, self.pn, self.fr, self.fs, self.fnum, self.ff, self.pl = 0, 0, 0, 0, 0, 0, 0, 0, 0
    self.tn, self.tail, self.cn, self.front = 0, '', 0, ''
  end
  return self
end

function Log:pack()
  return pack(LOG_FMT, self.base, self.pr, self.ps, self.pn, self.fr, self.fs, self.fnum, self.ff, self.pl, self.tn,
    self.cn)
    .. self.tail .. zeros(TAIL - self.tn) .. self.front .. zeros(FRONT - self.cn)
end

function Log:len()
  return self.pn + self.tn + self.fnum
end

function Log:is_empty()
  return self:len() == 0
end

-- A block of BLOCK slots of the ring (`region` 0) or of the bookings (1), as stored.
function Log:block(region, b)
  local cache = region == 0 and self.blocks or self.fblocks
  local bytes = cache[b]
  if bytes then return bytes end
  local room = region == 0 and self.pr or self.fr
  local first = b * BLOCK
  local last = min(first + BLOCK, room) - 1
  local from = self.body + 4 * (region == 0 and 0 or self.pr) + 4 * first
  bytes = redis.call('GETRANGE', self.key, from, from + 4 * (last - first) + 3)
  if #bytes < 4 * (last - first + 1) then
    -- The entries are gone (an evicted key): the log is forgotten at the next write.
    self.lost = true
    bytes = bytes .. zeros(last - first + 1)
  end
  cache[b] = bytes
  return bytes
end

function Log:slot(region, s)
  local b = floor(s / BLOCK)
  return u32_at(self:block(region, b), s - b * BLOCK)
end

-- The i-th entry's offset (0-based), over the ring, the tail and the bookings.
function Log:offset(i)
  local pn = self.pn
  if i < pn then
    if i < self.cn then return u32_at(self.front, i) end
    if i < FRONT then self:refill_front() return u32_at(self.front, i) end
    return self:slot(0, (self.ps + i) % self.pr)
  end
  i = i - pn
  if i < self.tn then return u32_at(self.tail, i) end
  return self:slot(1, self.fs + i - self.tn)
end

function Log:at(i)
  return self.base + self:offset(i)
end

-- Copies the oldest ring entries into the header's cache.
function Log:refill_front()
  local n = min(FRONT, self.pn)
  local parts = {}
  for i = 0, n - 1 do parts[i + 1] = pack('>I4', self:slot(0, (self.ps + i) % self.pr)) end
  self.front, self.cn = table.concat(parts), n
end

-- The ring's entries, oldest first, as stored.
function Log:ring_bytes()
  if self.pn == 0 then return '' end
  local from = self.body + 4 * self.ps
  local upto = self.ps + self.pn
  if upto <= self.pr then
    return redis.call('GETRANGE', self.key, from, from + 4 * self.pn - 1)
  end
  return redis.call('GETRANGE', self.key, from, self.body + 4 * self.pr - 1)
    .. redis.call('GETRANGE', self.key, self.body, self.body + 4 * (upto - self.pr) - 1)
end

-- `count` bookings (default: up to the last) from `from` (0-based), as stored.
function Log:booked_bytes(from, count)
  count = min(count or self.fnum, self.fnum - from)
  if count <= 0 then return '' end
  local at = self.body + 4 * (self.pr + self.fs + from)
  return redis.call('GETRANGE', self.key, at, at + 4 * count - 1)
end

-- Lays the log out again: a ring of `pr` slots starting at 0, bookings from the start of a region of `fr` slots,
-- offsets from `base`. The key is rewritten whole, at its exact size (growing it by SETRANGE would let Redis
-- allocate twice the length), so it loses its TTL: the commit sets it again.
function Log:rewrite(pr, fr, base)
  local ring, booked = self:ring_bytes(), self:booked_bytes(0)
  if base ~= self.base then
    local function rebased(bytes)
      local parts = {}
      for i = 0, #bytes / 4 - 1 do parts[i + 1] = pack('>I4', self.base + u32_at(bytes, i) - base) end
      return table.concat(parts)
    end
    ring, booked, self.tail = rebased(ring), rebased(booked), rebased(self.tail)
    if self.fnum > 0 then self.ff = u32_at(booked, 0) end
    if self.pn + self.tn > 0 then self.pl = self.base + self.pl - base end
    self.base = base
  end
  local region = ring .. zeros(pr - self.pn) .. booked .. zeros(fr - self.fnum)
  if #region == 0 and self.body == 0 then
    redis.call('DEL', self.key)
  else
    redis.call('SET', self.key, string.rep('\0', self.body) .. region)
  end
  self.pr, self.ps, self.fr, self.fs = pr, 0, fr, 0
  self.front, self.cn = '', 0
  self.blocks, self.fblocks = {}, {}
  self.rewritten, self.dirty = true, true
end

-- Room for `extra` more ring entries (the ring grows by doubling, up to `cap` when that is enough).
function Log:ring_room(extra, cap)
  local need = self.pn + extra
  if need <= self.pr then return end
  self:rewrite(max(need, min(max(2 * self.pr, MIN_ROOM), cap)), self.fr, self.base)
end

-- Appends entries (stored bytes, `count` of them, after every past entry) to the past: into the tail, flushed to
-- the ring with the tail when it is full.
function Log:append_past(bytes, count, cap)
  if count == 0 then return end
  self.pl = u32_at(bytes, count - 1)
  if self.tn + count <= TAIL then
    self.tail, self.tn = self.tail .. bytes, self.tn + count
  else
    bytes, count = self.tail .. bytes, self.tn + count
    self:ring_room(count, cap)
    local s = (self.ps + self.pn) % self.pr
    local fit = min(count, self.pr - s)
    redis.call('SETRANGE', self.key, self.body + 4 * s, string.sub(bytes, 1, 4 * fit))
    if fit < count then redis.call('SETRANGE', self.key, self.body, string.sub(bytes, 4 * fit + 1)) end
    self.pn, self.tail, self.tn = self.pn + count, '', 0
    self.blocks = {}
  end
  self.dirty = true
end

-- Forgets the `k` oldest entries.
function Log:drop_front(k)
  if k <= 0 then return end
  local from_ring = min(k, self.pn)
  if from_ring > 0 then
    self.pn = self.pn - from_ring
    self.ps = self.pn == 0 and 0 or (self.ps + from_ring) % self.pr
    local kept = max(self.cn - from_ring, 0)
    self.front, self.cn = string.sub(self.front, 4 * (self.cn - kept) + 1), kept
  end
  k = k - from_ring
  local from_tail = min(k, self.tn)
  if from_tail > 0 then
    self.tail, self.tn = string.sub(self.tail, 4 * from_tail + 1), self.tn - from_tail
  end
  k = k - from_tail
  if k > 0 then -- bookings that came due, in an operation that did not move them (a read)
    self.fs, self.fnum = self.fs + k, self.fnum - k
    if self.fnum > 0 then self.ff = self:slot(1, self.fs) end
  end
  self.dirty = true
end

-- The bookings at or before `t`: how many (binary search over the bookings alone).
function Log:booked_le(t)
  local n = self.fnum
  if n == 0 or self.base + self.ff > t then return 0 end
  local lo, hi = 0, n -- slot(fs + lo) <= t; the answer is in (lo, hi]
  while hi - lo > 1 do
    local mid = floor((lo + hi) / 2)
    if self.base + self:slot(1, self.fs + mid) <= t then lo = mid else hi = mid end
  end
  return hi
end

-- Moves the bookings whose instant has come to the past, before the first insert of an operation: the past then
-- holds exactly the entries at or before now, which insert's cap counts. (Reads never need it: every search runs
-- over the whole sequence. And it may write, which only an operation that goes on to write back may do.)
function Log:settle()
  if self.settled then return end
  self.settled = true
  local due = self:booked_le(now)
  if due == 0 then return end
  local bytes = self:booked_bytes(0, due + 1)
  self:append_past(string.sub(bytes, 1, 4 * due), due, U32)
  self.fs, self.fnum = self.fs + due, self.fnum - due
  if self.fnum > 0 then self.ff = u32_at(bytes, due) end
end

-- Room for one more booking at the end of the bookings region.
function Log:booking_room()
  if self.fs + self.fnum < self.fr then return end
  local fr = self.fr
  if self.fnum + 1 > fr - MIN_ROOM / 2 then fr = max(2 * fr, MIN_ROOM) end
  self:rewrite(self.pr, fr, self.base)
end

-- The offset of `t`, moving the base to the oldest entry first when `t` is too far from it (Window::offset_of).
function Log:offset_of(t)
  if self:is_empty() then
    self.base = t
    if self.pr + self.fr > 0 then self.ps, self.fs = 0, 0 end
  end
  local off = t - self.base
  if off >= 0 and off < U32 then return off end
  local base = min(self:at(0), t)
  self:rewrite(self.pr, self.fr, base)
  return t - base
end

---------------------------------------------------------------------------------------------------------------------
-- Logs: one exact rolling window each (window.rs).

-- How many entries are at or before t.
function Log:count_le(t)
  local np = self.pn + self.tn
  if np == 0 or self.base + self.pl <= t then return np + self:booked_le(t) end -- the common case: t >= now
  if self:at(0) > t then return 0 end
  local lo, hi = 0, np - 1 -- at(lo) <= t < at(hi)
  while hi - lo > 1 do
    local mid = floor((lo + hi) / 2)
    if self:at(mid) <= t then lo = mid else hi = mid end
  end
  return hi
end

function Log:count_lt(t)
  return self:count_le(t - 1)
end

-- The first index at or after `from` whose entry is after t (`inclusive`) or at or after it: a gallop from `from`,
-- then a binary search (Window::first_past).
function Log:first_past(from, t, inclusive)
  local n = self:len()
  local function before(i)
    if inclusive then return self:at(i) <= t end
    return self:at(i) < t
  end
  if from >= n or not before(from) then return from end
  local lo, step = from, 1
  local hi
  while true do
    local probe = lo + step
    if probe >= n then hi = n break end
    if not before(probe) then hi = probe break end
    lo = probe
    step = step * 2
  end
  while hi - lo > 1 do
    local mid = lo + floor((hi - lo) / 2)
    if before(mid) then lo = mid else hi = mid end
  end
  return hi
end

-- Forgets calls that no window containing an instant >= now can hold (Window::prune).
function Log:prune(span)
  local edge = now - span
  if edge < 0 or self:is_empty() then return end
  self:drop_front(self:first_past(0, edge, true))
end

-- The earliest instant >= t at which a call fits (Window::earliest): jumps past the leaving instant of the
-- limit-th call before t, or to the latest booked call in (t, t + span) whose window is full.
function Log:earliest(t, limit, span)
  local n = self:len()
  if limit == 0 or n < limit then return t end
  local p = self:count_le(t)
  local checked = p
  while true do
    local jumped = false
    if p >= limit then
      local leaves = self:at(p - limit) + span
      if leaves > t then
        t = leaves
        p = self:first_past(p, t, true)
        jumped = true
      end
    end
    if not jumped then
      if p == n then return t end -- nothing booked after t: the common case
      local from = max(p, checked)
      local upto = self:first_past(from, t + span, false)
      local full
      for k = upto - 1, max(from, limit - 1), -1 do
        if self:at(k + 1 - limit) + span > self:at(k) then
          full = k
          break
        end
      end
      checked = max(checked, upto)
      if not full then return t end
      t = self:at(full)
      p = self:first_past(p, t, true)
    end
  end
end

-- Records k calls at t. Of the calls at or before now, only the newest `cap` are kept (Window::insert).
function Log:insert(t, k, cap)
  if cap == 0 or k == 0 then return end
  self:settle()
  local entry = pack('>I4', self:offset_of(t))
  if t <= now then
    local np = self.pn + self.tn
    local over = np + k - cap
    if over > 0 then
      local drop = min(over, np)
      self:drop_front(drop)
      k = k - (over - drop)
    end
    self:append_past(string.rep(entry, k), k, cap)
  else
    for _ = 1, k do
      local q = self:booked_le(t)
      self:booking_room()
      local at = self.body + 4 * (self.pr + self.fs + q)
      redis.call('SETRANGE', self.key, at, entry .. self:booked_bytes(q))
      self.fnum = self.fnum + 1
      if q == 0 then self.ff = t - self.base end
      self.fblocks = {}
    end
    local np = self.pn + self.tn
    if np > cap then self:drop_front(np - cap) end
  end
  if not self.grew_to or t > self.grew_to then self.grew_to = t end
  self.dirty = true
end

-- Removes one call booked at t (> now: only bookings are ever removed); false when there is none.
function Log:remove(t)
  local q = self:booked_le(t - 1)
  if q >= self.fnum or self.base + self:slot(1, self.fs + q) ~= t then return false end
  local later = self:booked_bytes(q + 1)
  if q == 0 then
    self.fs = self.fs + 1
  else
    redis.call('SETRANGE', self.key, self.body + 4 * (self.pr + self.fs + q), later)
  end
  self.fnum = self.fnum - 1
  if self.fnum > 0 and q == 0 then self.ff = u32_at(later, 0) end
  self.fblocks = {}
  self.dirty = true
  return true
end

-- Calls in the window ending at `at`: (at - span, at].
function Log:count_at(at, span)
  return self:count_le(at) - self:count_le(at - span)
end

function Log:booked_after(at)
  return self:len() - self:count_le(at)
end

function Log:next_booked(at)
  local p = self:count_le(at)
  if p < self:len() then return self:at(p) end
  return nil
end

-- Before the header is written: a log whose entries were lost starts again empty; an emptied one gives back its
-- room. Returns whether the log is empty.
function Log:tidy()
  if self.lost then
    self.pn, self.tn, self.fnum, self.cn, self.tail, self.front = 0, 0, 0, 0, '', ''
    self.dirty = true
  end
  if self:is_empty() and self.pr + self.fr > 0 then
    if self.body == 0 then redis.call('DEL', self.key) else self:rewrite(0, 0, self.base) end
    self.pr, self.fr, self.ps, self.fs = 0, 0, 0, 0
    self.dirty = true
  end
  return self:is_empty()
end

---------------------------------------------------------------------------------------------------------------------
-- The app: its limits (a copy of the config hash's, read again every CONFIG_REFRESH_MS and whenever init or an
-- override invalidates it), the time floor, the app block and the app-minute log.

local function load_config()
  local c = redis.call('HMGET', K_CFG, 'clock', 'lim', 'floor', 'ab', 'abr', 'ogen')
  if not c[1] then fail('XG_NOCONFIG the limits of this key prefix are not stored') end
  -- Not anchored at the end: a later version may append fields.
  local lim = { string.match(c[2] or '', LIMITS_PATTERN) }
  if #lim ~= LIMIT_FIELDS then fail('XG_BADCONFIG the stored limits cannot be read: ' .. tostring(c[2])) end
  for i = 1, LIMIT_FIELDS do lim[i] = tonumber(lim[i]) end
  A.clock, A.lim = c[1] == 'server' and 1 or 2, lim
  A.fsaved = tonumber(c[3]) or 0
  A.floor = max(A.floor, A.fsaved)
  A.ab, A.abr, A.ogen = tonumber(c[4]) or 0, tonumber(c[5]) or 0, tonumber(c[6]) or 0
  A.cread = now
end

local function app_header()
  local v = { FORMAT, A.clock }
  for i = 1, LIMIT_FIELDS do v[i + 2] = A.lim[i] end
  local n = LIMIT_FIELDS + 2
  v[n + 1], v[n + 2], v[n + 3], v[n + 4], v[n + 5], v[n + 6], v[n + 7] =
    A.cread, A.floor, A.fsaved, A.ab, A.abr, A.ogen, A.kexp
  return pack(APP_FMT, unpack(v)) .. AM:pack()
end

-- Where init and set_override mark the app header's copy of the config as stale.
local CREAD_AT = 2 + 8 * LIMIT_FIELDS

-- Makes every process read the config again at its next call (init and set_override changed it).
local function stale_config(app_key)
  if redis.call('EXISTS', app_key) == 1 then redis.call('SETRANGE', app_key, CREAD_AT, pack('>d', -1)) end
end

-- Reads the clock, the app header and (when due) the config; `now` is then the operation's instant.
local function begin(keys, args)
  setup()
  K_CFG, K_APP, K_TEN, K_DAY, K_PRM, K_RES = keys[1], keys[2], keys[3], keys[4], keys[5], keys[6]
  ECHO = args[1]
  RETRY = string.sub(ECHO, 1, 2) == 'r:'
  OP = RETRY and string.sub(ECHO, 3) or ECHO
  MANUAL = args[2] ~= ''
  FIELD = args[3]
  TENANTLESS = FIELD == ''
  RESULT_TTL = tonumber(args[4]) or 0
  if MANUAL then
    now = tonumber(args[2])
  else
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
  end
  local h = redis.call('GETRANGE', K_APP, 0, A_HDR - 1)
  if #h == A_HDR and string.byte(h, 1) == FORMAT then
    local v = { sunpack(APP_FMT, h) }
    local n = LIMIT_FIELDS + 2
    A = { clock = v[2], lim = { unpack(v, 3, n) }, cread = v[n + 1], floor = v[n + 2], fsaved = v[n + 3],
      ab = v[n + 4], abr = v[n + 5], ogen = v[n + 6], kexp = v[n + 7] }
    AM = read_log(K_APP, A_HDR, h, APP_FIXED + 1)
  else
    A = { clock = 0, cread = -1, floor = 0, fsaved = 0, ab = 0, abr = 0, ogen = 0, kexp = 0 }
    AM = read_log(K_APP, A_HDR, nil)
  end
  if not A.lim or A.cread < 0 or now - A.cread >= CONFIG_REFRESH_MS or now < A.cread then load_config() end
  if (A.clock == 1) == MANUAL then
    fail('XG_CLOCK_MISMATCH this key prefix runs on the ' .. (A.clock == 1 and 'server' or 'manual') .. ' clock')
  end
  -- Time never runs backwards: not after a failover to a host with another clock, not between callers.
  if now < A.floor then now = A.floor end
  local lim = A.lim
  L.minute_window, L.minute_span = lim[2], lim[2] + lim[3]
  L.day_window, L.day_span = lim[5], lim[5] + lim[6]
  L.app_limit, L.app_window, L.app_span = lim[8], lim[9], lim[9] + lim[10]
  L.permit_timeout = lim[11]
end

---------------------------------------------------------------------------------------------------------------------
-- The tenant: its block, its own limits (cached), its logs and its permits. The tenantless scope (the empty id) has
-- a tenant key for its block; its windows are disabled and it holds no permits.

local function tenant_header()
  return pack(TEN_FMT, FORMAT, T.bu, T.br, T.ogen, T.om, T.od, T.oc, T.oset, T.pexp, T.kexp) .. TM:pack() .. TD:pack()
end

-- Reads what a decision needs, pruned to now (in memory: only a write writes it back).
local function open_scope()
  local h = redis.call('GETRANGE', K_TEN, 0, T_HDR - 1)
  if #h == T_HDR and string.byte(h, 1) == FORMAT then
    local _, bu, br, ogen, om, od, oc, oset, pexp, kexp = sunpack(TEN_FMT, h)
    T = { bu = bu, br = br, ogen = ogen, om = om, od = od, oc = oc, oset = oset, pexp = pexp, kexp = kexp,
      exists = true, dirty = false }
    TM = read_log(K_TEN, T_HDR, h, TEN_FIXED + 1)
    TD = read_log(K_DAY, 0, h, TEN_FIXED + LOG_BYTES + 1)
    -- The tenant's newest calls bound time too (the app's floor may have been lost with its key).
    for _, log in ipairs({ TM, TD }) do
      if log.pn + log.tn > 0 and log.base + log.pl > now then now = log.base + log.pl end
    end
  else
    T = { bu = 0, br = 0, ogen = 0, om = 0, od = 0, oc = 0, oset = 0, pexp = 0, kexp = 0, exists = #h > 0,
      dirty = false }
    TM, TD = read_log(K_TEN, T_HDR, nil), read_log(K_DAY, 0, nil)
  end
  -- The scope's limits (engine.rs scope_limits): none but the app window for a tenantless call, the tenant's own
  -- (re-read when any override changed since they were cached), or the app's defaults.
  if TENANTLESS then
    TL = { minute = 0, day = 0, conc = 0 }
  else
    if A.ogen ~= 0 and T.ogen ~= A.ogen then
      local own = redis.call('HGET', K_CFG, FIELD)
      local m, d, c = string.match(own or '', '^(%d+),(%d+),(%d+)')
      T.ogen, T.oset, T.om, T.od, T.oc = A.ogen, m and 1 or 0, tonumber(m) or 0, tonumber(d) or 0, tonumber(c) or 0
      T.dirty = true
    end
    if A.ogen ~= 0 and T.oset == 1 then
      TL = { minute = T.om, day = T.od, conc = T.oc }
    else
      TL = { minute = A.lim[1], day = A.lim[4], conc = A.lim[7] }
    end
  end
  P = {}
  AM:prune(L.app_span)
  TM:prune(L.minute_span)
  TD:prune(L.day_span)
end

-- Calls in flight: permits that have not expired.
local function in_flight()
  if TENANTLESS then return 0 end
  if not P.count then P.count = redis.call('ZCOUNT', K_PRM, '(' .. now, '+inf') end
  return P.count
end

-- Holds permit OP until `expires`; false when it is held already (this operation ran before: a replay).
local function hold_permit(expires)
  local added = redis.call('ZADD', K_PRM, 'NX', expires, OP, 0, SENTINEL)
  if added == 0 then return false end
  local needed = expires + GRACE_MS
  if added == 2 or T.pexp < needed then
    -- The sorted set is new, or its TTL runs out too soon: extend it (purging expired permits while at it).
    if added ~= 2 then redis.call('ZREMRANGEBYSCORE', K_PRM, '(0', now) end
    T.pexp = needed + min(TTL_SLACK_MS, L.permit_timeout)
    redis.call('PEXPIRE', K_PRM, T.pexp - now)
    T.dirty = true
  end
  return true
end

---------------------------------------------------------------------------------------------------------------------
-- The engine's rules (engine.rs).

-- When the tenant's in-flight count drops below its limit by expiry alone.
local function concurrency_free_at(t)
  local limit = TL.conc
  if limit == 0 or in_flight() < limit then return t end
  if not P.live then
    local z = redis.call('ZRANGEBYSCORE', K_PRM, '(' .. now, '+inf', 'WITHSCORES')
    P.live = {}
    for i = 2, #z, 2 do P.live[#P.live + 1] = tonumber(z[i]) end
  end
  -- Ascending: the permits that outlive t are a suffix, and the limit-th latest of them is the limit-th latest.
  local live = P.live
  local n = #live
  if n < limit or live[n - limit + 1] <= t then return t end
  return live[n - limit + 1]
end

local function block_end(until_, t)
  if until_ > t then return until_ end
  return t
end

-- The earliest instant >= now at which every constraint holds, and the constraint that set it. In priority order:
-- on a tie the first named is the reason reported.
local function earliest(with_concurrency)
  local t, reason = now, nil
  while true do
    local next_t, why = t, nil
    local c = block_end(A.ab, t)
    if c > next_t then next_t, why = c, A.abr end
    c = block_end(T.bu, t)
    if c > next_t then next_t, why = c, T.br end
    c = TD:earliest(t, TL.day, L.day_span)
    if c > next_t then next_t, why = c, R_DAY end
    c = AM:earliest(t, L.app_limit, L.app_span)
    if c > next_t then next_t, why = c, R_APP_MINUTE end
    c = TM:earliest(t, TL.minute, L.minute_span)
    if c > next_t then next_t, why = c, R_MINUTE end
    if with_concurrency then
      c = concurrency_free_at(t)
      if c > next_t then next_t, why = c, R_CONCURRENCY end
    end
    if next_t == t then return t, reason end
    t, reason = next_t, why
  end
end

-- Counts k calls at `at` in every window it belongs to (it counts even over a limit: it happened, or is booked).
local function record_call(at, k)
  TM:insert(at, k, TL.minute)
  TD:insert(at, k, TL.day)
  AM:insert(at, k, L.app_limit)
end

-- Past MAX_BOOKINGS for the tenant or MAX_APP_BOOKINGS for the app: the wait until the next booking comes due.
local function check_bookings()
  for _, w in ipairs({ { TM, MAX_BOOKINGS }, { TD, MAX_BOOKINGS }, { AM, MAX_APP_BOOKINGS } }) do
    if w[1]:booked_after(now) >= w[2] then return w[1]:next_booked(now) - now end
  end
  return nil
end

-- Removes a booking at `at` from every window it was counted in (a cancelled reservation).
local function unbook(at)
  TM:remove(at)
  TD:remove(at)
  AM:remove(at)
end

-- Adds the calls the server saw (limit - remaining) and we did not, at now (engine.rs add_phantoms).
local function add_phantoms(log, limit, window, remaining)
  if remaining < 0 or limit == 0 then return end
  local seen = max(limit - remaining, 0)
  local here = log:count_at(now, window)
  if seen > here then log:insert(now, seen - here, limit) end
end

---------------------------------------------------------------------------------------------------------------------
-- Idempotent retries for the operations without a permit to find: the result is kept for RESULT_TTL (a few
-- deadlines: as long as a retry, or an original that arrives after its retry, can come) and every attempt looks
-- for it first.

local function replay()
  local previous = redis.call('GET', K_RES)
  if previous then return cjson.decode(previous) end
  return nil
end

local function remember(result)
  redis.call('SET', K_RES, cjson.encode(result), 'PX', RESULT_TTL)
  return result
end

---------------------------------------------------------------------------------------------------------------------
-- Writing back: headers, TTLs, emptied logs.

-- A log's TTL: as long as its newest entry can matter, and at most TTL_SLACK_MS longer (so it is refreshed about
-- once a minute, not on every call).
local function commit()
  A.floor = max(A.floor, now)
  if now > A.fsaved + (MANUAL and 0 or FLOOR_SLACK_MS) then
    redis.call('HSET', K_CFG, 'floor', now)
    A.fsaved = now
  end
  AM:tidy()
  local need = max(AM.grew_to and AM.grew_to + L.app_span or 0, now) + GRACE_MS
  local expire = AM.rewritten or A.kexp < need
  if expire then A.kexp = max(A.kexp, need + min(TTL_SLACK_MS, L.app_span)) end
  redis.call('SETRANGE', K_APP, 0, app_header())
  if expire then redis.call('PEXPIRE', K_APP, A.kexp - now) end
  -- The tenant (the tenantless scope too: it has no windows but may be blocked).
  if TM.lost or TD.lost then TM:tidy() TD:tidy() end
  if TM:is_empty() and TD:is_empty() and T.bu <= now then
    if T.exists then redis.call('DEL', K_TEN, K_DAY) end
    return
  end
  if not (T.dirty or TM.dirty or TD.dirty) then return end
  TM:tidy()
  TD:tidy()
  need = max(TM.grew_to and TM.grew_to + L.minute_span or 0, TD.grew_to and TD.grew_to + L.day_span or 0, T.bu)
    + GRACE_MS
  expire = TM.rewritten or TD.rewritten or not T.exists or T.kexp < need
  if expire then T.kexp = max(T.kexp, need + min(TTL_SLACK_MS, max(L.minute_span, L.day_span))) end
  redis.call('SETRANGE', K_TEN, 0, tenant_header())
  if expire then
    redis.call('PEXPIRE', K_TEN, T.kexp - now)
    if TD.pr + TD.fr > 0 then redis.call('PEXPIRE', K_DAY, T.kexp - now) end
  end
end

local OPS = {}
