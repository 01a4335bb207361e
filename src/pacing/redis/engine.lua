-- xeroguard: the pacing engine on Redis. The Rust engine (src/pacing/engine.rs, window.rs) is the reference: the
-- functions below mirror it function for function, with the same names and algorithms, and a differential test
-- requires identical decisions. The shared numbers (reason codes, horizon, caps, grace and slack, format version)
-- come first, generated from Rust by build.rs; the operations (acquire.lua, ...) follow, each an entry of OPS.
-- Loaded once as a Redis Functions library on Redis 7 (the functions are defined once, not on every call), or sent
-- as one script (EVALSHA; the operation named by its last argument) where Functions are not available.
--
-- KEYS: 1 config hash (the stored limits, the tenants' own limits: no TTL), 2 state hash (every header, permit and
--       result: see below), 3 app ring, 4 tenant minute ring, 5 tenant day ring.
-- ARGV: 1 operation id ('' for reads; 'r:<id>' on a retry), 2 manual clock reading ('' = the server's TIME), 3 the
--       tenant's encoded id ('' for the tenantless scope), 4 how long a result lives (ms), 5 the config's epoch the
--       caller last saw ('' = any: see init.lua), 6... the operation's own.
--
-- The state hash holds what every call reads and writes, as fields, so that a decision is one HMGET and one HSET.
-- Each scope has three: a cold field and an envelope, written only when something but its newest calls changed, and
-- a hot field, written by every call. The common grant (acquire.lua) reads the envelopes (what the cold field and
-- the config allow without the engine: see app_envelope, tenant_envelope) and reads and writes the hot fields, all
-- small; Lua strings cost by the byte (each new one is hashed whole), so the bytes a call copies are kept few.
--   c           the app (cold): a copy of the config (re-read every CONFIG_REFRESH_MS, or when init or an override
--               makes it stale), the time floor, the app block, the app-minute log's header
--   e           the app's envelope
--   a           the app (hot): its newest calls (the app-minute log's tail)
--   c:<tenant>  a tenant (cold): its block, its own limits (cached), both logs' headers
--   e:<tenant>  a tenant's envelope, with when its state can be forgotten (the sweep reads it there)
--   h:<tenant>  a tenant (hot): the counts of its tails and permit ids, both logs' newest calls, and the ids of the
--               permits it may still hold
--   p:<id>      a permit held until its value, an 8-byte double (no decimal: number to text costs the common grant
--               a sprintf); release is an HDEL of it; a tenantless grant leaves one too, as its result, for a retry to
--               find
--   r:<id>      an operation's result, as '<expiry>:<json>' (record, reserve, cancel)
--   b:<id>      a reservation booked ahead, until its instant (its value): cancel finds it by its id
-- Expired fields are swept a few at a time (HSCAN) as the app's log is written; the hash's TTL covers its content.
--
-- A log is the sorted instants of one window, each stored as 4 bytes, modulo 2^32 (a window's calls lie within
-- 2^32 ms of each other: span and booking horizon together are less): decoded from a base instant at or before
-- them, which moves forward without rewriting anything. Its past calls are in a ring (a
-- string key, the oldest first, with the bookings in a region after it), its newest calls in a tail kept in its
-- scope's hot field, and copies of the oldest ring entries in its cold field. So the common call touches no ring: it
-- appends to the tails; a ring is written every TAIL calls (a flush) and read every FRONT (a refill) or for
-- bookings.

local U32 = 4294967296
-- Entries a log keeps out of its ring: newest past calls not yet in it (a tail: every call reads and writes it, every
-- TAIL-th flushes it: 48 measured cheapest beside 24, 32 and 64), and copies of the oldest ring entries.
local TAIL, FRONT = 48, 8
-- A tenant's day tail count that says the day tail is its minute tail (more than TAIL).
local SHARED_TAIL = 255
-- Entries read at once when a search needs the ring or the bookings.
local BLOCK = 256
-- The smallest ring or bookings region allocated.
local MIN_ROOM = 8
-- Fields of the state hash looked at per sweep step.
local SWEEP_COUNT = 16
-- Booked calls a search for a full window checks at once (Window::earliest's SCAN_CHUNK).
local SCAN_CHUNK = 64
-- A jump past a full window that passes fewer calls than this ends the jumping (Window::leave_full's JUMP_MIN).
local JUMP_MIN = 8

-- A log's header: base, ring room, ring start, ring count, bookings room, bookings start, bookings count, first
-- booking (offset), newest ring entry (offset), cached front count, the cached front (FRONT entries).
local LOG_FMT = 'dI4I4I4I4I4I4I4I4Bc' .. (4 * FRONT)
-- The app's cold field: format, clock (1 server, 2 manual), the limits (LIMIT_FIELDS), when the config was read,
-- the time floor, app block until and reason, override generation, the state hash's expiry, the sweep's cursor, the
-- config's epoch, the config's generation (one more at every read of it), then the app-minute log's header.
local LIMITS_FMT, APP_REST_FMT
-- The app's envelope: FORMAT (0: the engine decides), clock, when
-- the config was read, its epoch and generation, the floor (with the ring's newest call), the block's end, the
-- state hash's expiry, the log's base, the reach a tenant's state and the app's need past now (with the grace),
-- the permit timeout, the calls the log may still take before its limit, the calls in its ring. The engine packs
-- and the common grant reads an envelope by these names (envelope_bytes, envelope_of).
local ENV_A_FMT = '>BBddddddddddI4I4'
local ENV_A_NAMES = { 'format', 'clock', 'cread', 'epoch', 'cgen', 'floor', 'block_until', 'kexp', 'base',
  'tenant_reach', 'app_reach', 'permit_timeout', 'room', 'ring' }
-- A tenant's cold field: format, block until and reason, override generation seen, own minute, day and
-- concurrency limits, whether it has them, when its state can be forgotten, then the minute and day logs' headers.
local TEN_FMT = '>BdBdI4I4I4Bd' .. LOG_FMT .. LOG_FMT
-- A tenant's envelope: FORMAT (0: the engine decides), when its state can be forgotten (the sweep reads it at
-- ENV_T_KEXP_AT), the config generation it was written under, its block's end, the floor (both rings' newest
-- calls), both logs' bases, its limits (minute, day, concurrency), the calls each log may still take before its
-- limit, the calls in each ring.
local ENV_T_FMT = '>BddddddI4I4I4I4I4I4I4'
local ENV_T_NAMES = { 'format', 'kexp', 'cgen', 'block_until', 'floor', 'mbase', 'dbase', 'minute', 'day',
  'concurrency', 'mroom', 'droom', 'mring', 'dring' }
local ENV_T_KEXP_AT = 2
-- A tenant's hot field: three counts (minute tail, day tail, permit ids), the tails, the permit ids ('id,id,'). A
-- day tail count of SHARED_TAIL: the day tail is the minute tail, stored once.
local HOT_COUNTS_FMT, HOT_COUNTS = '>BBH', nil
local A_COLD, T_COLD, ENV_A, ENV_T
local LIMITS_PATTERN
local ZERO_FRONT

-- Per call: the keys and arguments, now, the app (A) and tenant (T) headers, the scope's limits (TL), the logs (AM
-- app minute, TM tenant minute, TD tenant day), the limits' parts (L), and the fields the commit writes (W).
local K_CFG, K_STATE, K_ARING, K_MRING, K_DRING
local OP, ECHO, RETRY, TENANTLESS, MANUAL, RESULT_TTL, F_TENANT, F_COLD, F_ENV, F_OWN, EPOCH
local now
-- Reused by every call (a Functions library keeps them between calls): every field is set before it is read.
local A, T, TL, L = {}, {}, {}, {}
local AM, TM, TD
-- The fields the commit writes: W[1..WN].
local W, WN = {}, 0

-- `make(key)` remembered by key, at most `cap` keys (then forgotten together): what is parsed from the same bytes on
-- most calls. A Functions library keeps these between calls; EVAL starts each call with them empty.
local function memo(cap, make)
  local values, kept = {}, 0
  return function(key)
    local v = values[key]
    if v == nil then
      v = make(key)
      if v == nil then return nil end
      if kept >= cap then values, kept = {}, 0 end
      values[key], kept = v, kept + 1
    end
    return v
  end
end

local Log = {}
Log.__index = Log

-- A Functions library sees no global but `redis` while it loads: what the top level would take from the Lua
-- libraries is taken at the first call instead.
local max, min, floor, pack, sunpack, sub
local function setup()
  if pack then return end
  max, min, floor, pack, sunpack, sub = math.max, math.min, math.floor, struct.pack, struct.unpack, string.sub
  ZERO_FRONT = string.rep('\0', 4 * FRONT)
  AM, TM, TD = setmetatable({}, Log), setmetatable({}, Log), setmetatable({}, Log)
  LIMITS_FMT = '>' .. string.rep('d', LIMIT_FIELDS)
  APP_REST_FMT = '>dddBddddd' .. LOG_FMT
  A_COLD = 2 + struct.size(LIMITS_FMT) + struct.size(APP_REST_FMT)
  T_COLD = struct.size(TEN_FMT)
  ENV_A, ENV_T, HOT_COUNTS = struct.size(ENV_A_FMT), struct.size(ENV_T_FMT), struct.size(HOT_COUNTS_FMT)
  LIMITS_PATTERN = '^' .. string.rep('(%d+),', LIMIT_FIELDS - 1) .. '(%d+)'
end

local function fail(text)
  error({ err = text })
end

-- Limits parsed from their stored bytes (a few apps per server).
local limits_of = memo(64, function(bytes) return { sunpack(LIMITS_FMT, bytes) } end)
-- The numbers callers send as text (epochs, result lifetimes: a few per app): tonumber is a strtod.
local number_of = memo(256, function(text) return tonumber(text) end)

-- An envelope's bytes from its fields by name, and its fields by name from its bytes (by length: the app's and a
-- tenant's differ), parsed once per distinct envelope.
local function envelope_bytes(fmt, names, fields)
  local v = {}
  for i = 1, #names do v[i] = fields[names[i]] end
  return pack(fmt, unpack(v, 1, #names))
end

local envelope_of = memo(1024, function(bytes)
  local fmt, names = ENV_T_FMT, ENV_T_NAMES
  if #bytes == ENV_A then fmt, names = ENV_A_FMT, ENV_A_NAMES end
  local v, fields = { sunpack(fmt, bytes) }, {}
  for i = 1, #names do fields[names[i]] = v[i] end
  return fields
end)

-- A permit field's expiry (nil: none, or not a permit's value).
local function permit_expiry(value)
  if value and #value == 8 then return (sunpack('>d', value)) end
  return nil
end

local function u32_at(bytes, i)
  return (sunpack('>I4', bytes, 4 * i + 1))
end

-- `bytes` repeated `n` times (by doubling: string.rep appends one copy at a time).
local function repeated(bytes, n)
  local out = ''
  while n > 0 do
    if n % 2 == 1 then out = out .. bytes end
    n = floor(n / 2)
    if n > 0 then bytes = bytes .. bytes end
  end
  return out
end

local function zeros(entries)
  return repeated('\0\0\0\0', entries)
end

---------------------------------------------------------------------------------------------------------------------
-- Logs: storage.


-- Makes `log` an empty log with its ring in `key` (a header read into it sets its fields after).
local function reset_log(log, key)
  log.key, log.base, log.pr, log.ps, log.pn, log.fr, log.fs, log.fnum, log.ff, log.pl, log.cn, log.front =
    key, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ''
  log.tail, log.tn, log.blocks, log.fblocks, log.grew_to = '', 0, nil, nil, nil
  log.dirty, log.changed, log.flushed, log.rewritten, log.lost, log.settled = false, false, false, false, false, false
end

-- The header's fields, in LOG_FMT's order (after `v`'s first `n`).
function Log:fields(v, n)
  v[n + 1], v[n + 2], v[n + 3], v[n + 4], v[n + 5], v[n + 6], v[n + 7], v[n + 8], v[n + 9], v[n + 10], v[n + 11] =
    self.base, self.pr, self.ps, self.pn, self.fr, self.fs, self.fnum, self.ff, self.pl, self.cn,
    self.front .. sub(ZERO_FRONT, 4 * self.cn + 1)
  return n + 11
end

function Log:len()
  return self.pn + self.tn + self.fnum
end

function Log:is_empty()
  return self:len() == 0
end

-- The newest call at or before now, if any.
-- The instant a stored value stands for.
function Log:decode(stored)
  return self.base + (stored - self.base) % U32
end

function Log:newest_past()
  if self.tn > 0 then return self:decode(u32_at(self.tail, self.tn - 1)) end
  if self.pn > 0 then return self:decode(self.pl) end
  return nil
end

-- Formats of `n` offsets, by n.
local OFFSETS = {}

local function offsets_format(n)
  local fmt = OFFSETS[n]
  if not fmt then
    fmt = '>' .. string.rep('I4', n)
    OFFSETS[n] = fmt
  end
  return fmt
end

-- A block of BLOCK slots of the ring (`region` 0) or of the bookings (1), as stored (decoded entry by entry: a
-- search reads a few of them).
function Log:block(region, b)
  local cache
  if region == 0 then
    cache = self.blocks or {}
    self.blocks = cache
  else
    cache = self.fblocks or {}
    self.fblocks = cache
  end
  local bytes = cache[b]
  if bytes then return bytes end
  local room = region == 0 and self.pr or self.fr
  local first = b * BLOCK
  local count = min(first + BLOCK, room) - first
  local from = 4 * (region == 0 and 0 or self.pr) + 4 * first
  bytes = redis.call('GETRANGE', self.key, from, from + 4 * count - 1)
  if #bytes < 4 * count then
    -- The entries are gone (an evicted key): the log is forgotten at the next write.
    self.lost = true
    bytes = bytes .. zeros(count)
  end
  cache[b] = bytes
  return bytes
end

function Log:slot(region, s)
  local b = floor(s / BLOCK)
  return (sunpack('>I4', self:block(region, b), 4 * (s - b * BLOCK) + 1))
end

-- The i-th entry as stored (0-based), over the ring, the tail and the bookings. (Written out: searches call it
-- most.)
function Log:offset(i)
  local pn = self.pn
  if i < pn then
    if i < self.cn then return (sunpack('>I4', self.front, 4 * i + 1)) end
    if i < FRONT then
      self:refill_front()
      return (sunpack('>I4', self.front, 4 * i + 1))
    end
    local s = (self.ps + i) % self.pr
    local b = floor(s / BLOCK)
    local blocks = self.blocks
    return (sunpack('>I4', blocks and blocks[b] or self:block(0, b), 4 * (s - b * BLOCK) + 1))
  end
  i = i - pn
  local tn = self.tn
  if i < tn then return (sunpack('>I4', self.tail, 4 * i + 1)) end
  local s = self.fs + i - tn
  local b = floor(s / BLOCK)
  local blocks = self.fblocks
  return (sunpack('>I4', blocks and blocks[b] or self:block(1, b), 4 * (s - b * BLOCK) + 1))
end

function Log:at(i)
  local base = self.base
  return base + (self:offset(i) - base) % U32
end

-- Copies the oldest ring entries into the header's cache (written back only with the header).
function Log:refill_front()
  local n = min(FRONT, self.pn)
  local parts = {}
  for i = 0, n - 1 do parts[i + 1] = pack('>I4', self:slot(0, (self.ps + i) % self.pr)) end
  self.front, self.cn = table.concat(parts), n
  self.dirty = true
end

-- The ring's entries, oldest first, as stored.
function Log:ring_bytes()
  if self.pn == 0 then return '' end
  local upto = self.ps + self.pn
  if upto <= self.pr then
    return redis.call('GETRANGE', self.key, 4 * self.ps, 4 * upto - 1)
  end
  return redis.call('GETRANGE', self.key, 4 * self.ps, 4 * self.pr - 1)
    .. redis.call('GETRANGE', self.key, 0, 4 * (upto - self.pr) - 1)
end

-- `count` bookings (default: up to the last) from `from` (0-based), as stored.
function Log:booked_bytes(from, count)
  count = min(count or self.fnum, self.fnum - from)
  if count <= 0 then return '' end
  local at = 4 * (self.pr + self.fs + from)
  return redis.call('GETRANGE', self.key, at, at + 4 * count - 1)
end

-- Lays the ring key out again: a ring of `pr` slots starting at 0 (with `more`, `count` more past entries after
-- the present ones), bookings from the start of a region of `fr` slots. The key is rewritten whole, at its exact
-- size (growing it by SETRANGE would let Redis allocate twice the length), so it loses its TTL: the commit sets it
-- again.
function Log:rewrite(pr, fr, more, count)
  local ring, booked = self:ring_bytes(), self:booked_bytes(0)
  more, count = more or '', count or 0
  if count > 0 then self.pn, self.pl = self.pn + count, u32_at(more, count - 1) end
  local region = table.concat({ ring, more, zeros(pr - self.pn), booked, zeros(fr - self.fnum) })
  if #region == 0 then redis.call('DEL', self.key) else redis.call('SET', self.key, region) end
  self.pr, self.ps, self.fr, self.fs = pr, 0, fr, 0
  self.front, self.cn = '', 0
  self.blocks, self.fblocks = nil, nil
  self.rewritten, self.dirty = true, true
end

-- The ring's room for `need` entries: it grows by doubling, up to `cap` when that is enough.
function Log:grown(need, cap)
  return max(need, min(max(2 * self.pr, MIN_ROOM), cap))
end

-- Appends entries (stored bytes, `count` of them, after every past entry) to the past: into the tail, flushed to
-- the ring with the tail when it is full (into a ring laid out again when it must grow).
function Log:append_past(bytes, count, cap)
  if count == 0 then return end
  if self.tn + count <= TAIL then
    self.tail, self.tn = self.tail .. bytes, self.tn + count
    return
  end
  bytes, count = self.tail .. bytes, self.tn + count
  self.tail, self.tn = '', 0
  if self.pn + count > self.pr then
    self:rewrite(self:grown(self.pn + count, cap), self.fr, bytes, count)
  else
    local s = (self.ps + self.pn) % self.pr
    local fit = min(count, self.pr - s)
    redis.call('SETRANGE', self.key, 4 * s, fit == count and bytes or sub(bytes, 1, 4 * fit))
    if fit < count then redis.call('SETRANGE', self.key, 0, sub(bytes, 4 * fit + 1)) end
    self.pn, self.pl = self.pn + count, u32_at(bytes, count - 1)
    self.blocks = nil
  end
  self.dirty, self.flushed = true, true
end

-- Forgets the `k` oldest entries.
function Log:drop_front(k)
  if k <= 0 then return end
  local from_ring = min(k, self.pn)
  if from_ring > 0 then
    self.pn = self.pn - from_ring
    self.ps = self.pn == 0 and 0 or (self.ps + from_ring) % self.pr
    local kept = max(self.cn - from_ring, 0)
    self.front, self.cn = sub(self.front, 4 * (self.cn - kept) + 1, 4 * self.cn), kept
  end
  k = k - from_ring
  local from_tail = min(k, self.tn)
  if from_tail > 0 then
    self.tail, self.tn = sub(self.tail, 4 * from_tail + 1), self.tn - from_tail
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
  if n == 0 or self:decode(self.ff) > t then return 0 end
  local lo, hi = 0, n -- slot(fs + lo) <= t; the answer is in (lo, hi]
  while hi - lo > 1 do
    local mid = floor((lo + hi) / 2)
    if self:decode(self:slot(1, self.fs + mid)) <= t then lo = mid else hi = mid end
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
  self:append_past(sub(bytes, 1, 4 * due), due, U32)
  self.fs, self.fnum, self.dirty = self.fs + due, self.fnum - due, true
  if self.fnum > 0 then self.ff = u32_at(bytes, due) end
end

-- Room for one more booking at the end of the bookings region.
function Log:booking_room()
  if self.fs + self.fnum < self.fr then return end
  local fr = self.fr
  if self.fnum + 1 > fr - MIN_ROOM / 2 then fr = max(2 * fr, MIN_ROOM) end
  self:rewrite(self.pr, fr)
end

-- How `t` is stored, moving the base first when `t` is not within 2^32 ms after it (Window::offset_of). Calls more
-- than 2^32 ms before `t` can be in no window with it: they are forgotten first (prune only runs when a ring is
-- written).
function Log:offset_of(t)
  if self:is_empty() then
    self.base, self.ps, self.fs, self.dirty = t, 0, 0, true
  elseif t < self.base or t - self.base >= U32 then
    if t >= U32 then self:drop_front(self:first_past(0, t - U32, true, 0)) end
    self.base, self.dirty = self:is_empty() and t or min(self:at(0), t), true
  end
  return t % U32
end

-- Before the header is written: a log whose entries were lost starts again empty; an emptied one gives back its
-- ring key. Returns whether the log is empty.
function Log:tidy()
  if self.lost then
    self.pn, self.tn, self.fnum, self.cn, self.tail, self.front = 0, 0, 0, 0, '', ''
    self.dirty = true
  end
  if self:is_empty() and self.pr + self.fr > 0 then
    redis.call('DEL', self.key)
    self.pr, self.fr, self.ps, self.fs, self.dirty = 0, 0, 0, 0, true
  end
  return self:is_empty()
end

---------------------------------------------------------------------------------------------------------------------
-- Logs: one exact rolling window each (window.rs).

-- How many entries are at or before t.
function Log:count_le(t)
  local np = self.pn + self.tn
  local newest = self:newest_past()
  if not newest or newest <= t then return np + self:booked_le(t) end -- the common case: t >= now
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
-- then a binary search; with a `hint` (0: none), looked for first at `from + hint` (Window::first_past).
function Log:first_past(from, t, inclusive, hint)
  local n = self:len()
  -- Entries before the answer are <= t (`inclusive`) or < t: `edge` is the first value past them.
  local edge = inclusive and t + 1 or t
  if from >= n or self:at(from) >= edge then return from end
  local lo, hi = from, nil
  if hint > 0 then
    local last = from + hint - 1
    if last >= n or self:at(last) >= edge then
      hi = min(last, n)
    elseif last + 1 >= n or self:at(last + 1) >= edge then
      return last + 1
    else
      lo = last + 1
    end
  end
  if not hi then
    local step = 1
    while true do
      local probe = lo + step
      if probe >= n then hi = n break end
      if self:at(probe) >= edge then hi = probe break end
      lo = probe
      step = step * 2
    end
  end
  while hi - lo > 1 do
    local mid = lo + floor((hi - lo) / 2)
    if self:at(mid) < edge then lo = mid else hi = mid end
  end
  return hi
end

-- Forgets calls that no window containing an instant >= now can hold (Window::prune).
function Log:prune(span)
  local edge = now - span
  if edge < 0 or self:is_empty() then return end
  self:drop_front(self:first_past(0, edge, true, 0))
end

-- The earliest instant >= t at which a call fits (Window::earliest): jumps past the leaving instant of the
-- limit-th call before t, or to the latest booked call in (t, t + span) whose window is full.
function Log:earliest(t, limit, span)
  local n = self:len()
  if limit == 0 or n < limit then return t end
  local p = self:count_le(t)
  local checked = p
  -- Calls at or before t - span (t only grows: the count is found by galloping on).
  local left = 0
  while true do
    local jumped = false
    if p >= limit and self:at(p - limit) + span > t then
      t, p = self:leave_full(t, p, limit, span)
      jumped = true
    end
    if not jumped then
      if p == n then return t end -- nothing booked after t: the common case
      local from = max(p, checked)
      local upto = self:first_past(from, t + span, false, 0)
      -- A full window ending at a booked call in (t, t + span) lies within (t - span, t + span): with fewer than
      -- `limit` calls there, there is none (the common case of a tenant booking ahead).
      if t >= span then left = self:first_past(left, t - span, true, 0) end
      if upto - left < limit then return t end
      local full = self:latest_full(from, upto, limit, span)
      checked = max(checked, upto)
      if not full then return t end
      t = self:at(full)
      p = self:first_past(p, t, true, 0)
    end
  end
end

-- From t whose window is full (p calls at or before it): the first instant after it whose window is not, and the
-- calls at or before that; jump by jump while jumps pass many calls, then a scan (Window::leave_full).
function Log:leave_full(t, p, limit, span)
  local n = self:len()
  while p >= limit do
    local leaves = self:at(p - limit) + span
    if leaves <= t then break end
    local next = self:first_past(p, leaves, true, limit)
    if next - p < JUMP_MIN and next < n then return self:free_after(leaves, next, limit, span) end
    t, p = leaves, next
  end
  return t, p
end

-- The first instant >= t (p calls at or before it, at least `limit`) whose window holds fewer than `limit` calls,
-- and the calls at or before it; between the calls q - 1 and q it is x = max(t or the call q - 1, the call
-- q - limit + span), if x comes before the call q (Window::free_after). Read a chunk at a time, as arrays.
function Log:free_after(t, p, limit, span)
  local n, base = self:len(), self.base
  local lower = t - base
  local q = p
  while q < n do
    local b = min(q + SCAN_CHUNK, n)
    local here, starts = self:offsets(q, b), self:offsets(q - limit, b - limit)
    for k = 1, b - q do -- (written out: the loop runs up to MAX_BOOKINGS times)
      local x, h = starts[k] - base, here[k] - base
      if x < 0 then x = x + U32 end
      if h < 0 then h = h + U32 end
      x = x + span
      if x < lower then x = lower end
      if x < h then return base + x, q + k - 1 end
      lower = h
    end
    q = b
  end
  return base + max(lower, (self:offset(n - limit) - base) % U32 + span), n
end

-- Entries i..j-1 as stored, as an array (for a scan: decoded a block's run at a time, not one call each).
function Log:offsets(i, j)
  local out, n = {}, 0
  local pn, tn = self.pn, self.tn
  while i < j do
    local bytes, at, take
    if i < pn then
      local s = (self.ps + i) % self.pr
      local b = floor(s / BLOCK)
      local blocks = self.blocks
      bytes = blocks and blocks[b] or self:block(0, b)
      at = s - b * BLOCK
      take = min(j, pn) - i
      take = min(take, #bytes / 4 - at, self.pr - s)
    elseif i < pn + tn then
      bytes, at, take = self.tail, i - pn, min(j, pn + tn) - i
    else
      local s = self.fs + i - pn - tn
      local b = floor(s / BLOCK)
      local blocks = self.fblocks
      bytes = blocks and blocks[b] or self:block(1, b)
      at = s - b * BLOCK
      take = min(j - i, #bytes / 4 - at)
    end
    local run = { sunpack(offsets_format(take), bytes, 4 * at + 1) }
    if n == 0 and take == j - i then return run end -- one run: as unpacked (its last value is past the entries)
    for x = 1, take do out[n + x] = run[x] end
    n, i = n + take, i + take
  end
  return out
end

-- The latest call in lo..hi-1 whose window holds `limit` calls (Window::latest_full): at k that is
-- k + 1 - c(k) >= limit, where c(k) counts the calls at or before at(k) - span and never decreases with k, so over
-- a..b-1 it is at most b - c(a). Searched from the top in chunks of SCAN_CHUNK: a chunk the bound rules out is
-- skipped whole (one search), the others read through.
function Log:latest_full(lo, hi, limit, span)
  lo = max(lo, limit - 1)
  -- The latest first: in a run of bookings made at the limit's pace it is full.
  if hi > lo and self:at(hi - limit) + span > self:at(hi - 1) then return hi - 1 end
  local b = hi
  while b > lo do
    local a = max(b - SCAN_CHUNK, lo)
    local edge = self:at(a) - span
    if b - (edge >= 0 and self:count_le(edge) or 0) >= limit then
      local ends, starts = self:offsets(a, b), self:offsets(a + 1 - limit, b + 1 - limit)
      local base = self.base
      for x = b - a, 1, -1 do
        if (starts[x] - base) % U32 + span > (ends[x] - base) % U32 then return a + x - 1 end
      end
    end
    b = a
  end
  return nil
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
    self:append_past(repeated(entry, k), k, cap)
  else
    for _ = 1, k do
      local q = self:booked_le(t)
      self:booking_room()
      local at = 4 * (self.pr + self.fs + q)
      redis.call('SETRANGE', self.key, at, entry .. self:booked_bytes(q))
      self.fnum = self.fnum + 1
      if q == 0 then self.ff = t % U32 end
      self.fblocks, self.dirty = nil, true
    end
    local np = self.pn + self.tn
    if np > cap then self:drop_front(np - cap) end
  end
  -- The header's own fields change only when something else than the tail did (`dirty`).
  if not self.grew_to or t > self.grew_to then self.grew_to = t end
  self.changed = true
end

-- Records calls at the instants `at` (ascending, at or before now) among the past calls, which they may precede: the
-- past is merged and the ring laid out again (phantom calls only: rare). Of the past calls the newest `cap` are kept
-- (Window::insert, call by call).
function Log:insert_past(at, cap)
  self:settle()
  local np, merged, n, a = self.pn + self.tn, {}, 0, 0
  for _, t in ipairs(at) do
    while a < np and self:at(a) <= t do
      n, a = n + 1, a + 1
      merged[n] = self:at(a - 1)
    end
    n = n + 1
    merged[n] = t
  end
  while a < np do
    n, a = n + 1, a + 1
    merged[n] = self:at(a - 1)
  end
  local from = max(n - cap, 0) + 1
  local count = n - from + 1
  if count <= 0 then return end
  local parts = {}
  for i = from, n do parts[i - from + 1] = pack('>I4', merged[i] % U32) end
  self.base = self:is_empty() and merged[from] or min(self.base, merged[from])
  self.pn, self.tn, self.tail, self.cn, self.front = 0, 0, '', 0, ''
  self:rewrite(max(count, MIN_ROOM), self.fr, table.concat(parts), count)
  if not self.grew_to or merged[n] > self.grew_to then self.grew_to = merged[n] end
  self.changed = true
end

-- Removes one call booked at t (> now: only bookings are ever removed); false when there is none.
function Log:remove(t)
  local q = self:booked_le(t - 1)
  if q >= self.fnum or self:decode(self:slot(1, self.fs + q)) ~= t then return false end
  local later = self:booked_bytes(q + 1)
  if q == 0 then
    self.fs = self.fs + 1
  else
    redis.call('SETRANGE', self.key, 4 * (self.pr + self.fs + q), later)
  end
  self.fnum = self.fnum - 1
  if self.fnum > 0 and q == 0 then self.ff = u32_at(later, 0) end
  self.fblocks = nil
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


---------------------------------------------------------------------------------------------------------------------
-- The app's fields ('c' cold, 'a' hot): the config's copy, the floor, the block, the app-minute log.

-- From the cold field `a`, the envelope `env` and the hot field `hot`.
local function read_app(a, env, hot)
  reset_log(AM, K_ARING)
  if a and #a >= A_COLD and string.byte(a, 1) == FORMAT and env and #env == ENV_A and hot then
    local lim = limits_of(sub(a, 3, 2 + 8 * LIMIT_FIELDS))
    local front
    A.cread, A.floor, A.ab, A.abr, A.ogen, A.kexp, A.sweep, A.epoch, A.cgen,
      AM.base, AM.pr, AM.ps, AM.pn, AM.fr, AM.fs, AM.fnum, AM.ff, AM.pl, AM.cn, front =
      sunpack(APP_REST_FMT, a, 3 + 8 * LIMIT_FIELDS)
    A.clock, A.lim, A.cold, A.env, A.dirty = string.byte(a, 2), lim, a, env, false
    AM.front, AM.tail = sub(front, 1, 4 * AM.cn), hot
    AM.tn = #AM.tail / 4
  else
    A.clock, A.lim, A.cread, A.floor, A.ab, A.abr, A.ogen, A.kexp, A.sweep, A.epoch, A.cgen, A.cold, A.dirty =
      0, nil, -1, 0, 0, 0, 0, 0, 0, 0, 0, nil, true
  end
end

local function load_config()
  local c = redis.call('HMGET', K_CFG, 'clock', 'lim', 'ogen', 'epoch')
  if not c[1] then fail('XG_NOCONFIG the limits of this key prefix are not stored') end
  -- Not anchored at the end: a later version may append fields.
  local lim = { string.match(c[2] or '', LIMITS_PATTERN) }
  if #lim ~= LIMIT_FIELDS then fail('XG_BADCONFIG the stored limits cannot be read: ' .. tostring(c[2])) end
  local same = A.lim ~= nil
  for i = 1, LIMIT_FIELDS do
    lim[i] = tonumber(lim[i])
    same = same and lim[i] == A.lim[i]
  end
  local clock, ogen, epoch = c[1] == 'server' and 1 or 2, tonumber(c[3]) or 0, tonumber(c[4]) or 0
  -- Tenants' envelopes hold limits of one generation: a config that changed (never the periodic re-read alone)
  -- takes a new one (never a number used before), which sends each tenant's next call to the engine once.
  if not (same and clock == A.clock and ogen == A.ogen and epoch == A.epoch) then A.cgen = max(A.cgen + 1, now) end
  A.clock, A.lim, A.ogen, A.cread, A.epoch, A.dirty = clock, lim, ogen, now, epoch, true
end

-- What the common grant may take for granted of the app until the next write of its cold field (acquire.lua
-- granted_at_once): the engine's shortest way through holds while the config is fresh, the block over, no call
-- booked, the window below its limit and the state hash's TTL far enough.
local function app_envelope()
  local lim = A.lim
  local usable = lim[8] > 0 and AM.fnum == 0
  local floor_ = max(A.floor, AM.pn > 0 and AM:decode(AM.pl) or 0)
  local tenant_reach = max(lim[2] + lim[3], lim[5] + lim[6], lim[11]) + GRACE_MS
  return envelope_bytes(ENV_A_FMT, ENV_A_NAMES, { format = usable and FORMAT or 0, clock = A.clock, cread = A.cread,
    epoch = A.epoch, cgen = A.cgen, floor = floor_, block_until = A.ab, kexp = A.kexp, base = AM.base,
    tenant_reach = tenant_reach, app_reach = max(tenant_reach, lim[9] + lim[10] + GRACE_MS),
    permit_timeout = lim[11], room = max(lim[8] - AM.pn, 0), ring = AM.pn })
end

-- The app's fields: the cold one and the envelope when they changed (else nil), the hot one.
local function app_header()
  local cold, env
  if A.dirty or AM.dirty then
    local v = { A.cread, A.floor, A.ab, A.abr, A.ogen, A.kexp, A.sweep, A.epoch, A.cgen }
    AM:fields(v, 9)
    A.cold = pack('>BB', FORMAT, A.clock) .. pack(LIMITS_FMT, unpack(A.lim, 1, LIMIT_FIELDS))
      .. pack(APP_REST_FMT, unpack(v))
    A.env = app_envelope()
    cold, env = A.cold, A.env
  end
  return cold, env, AM.tail
end

-- Makes every process read the config again at its next call (init and set_override changed it): the cold field
-- forgets when it was read, the envelope sends the common grant to the engine.
local function stale_config(state_key)
  local c = redis.call('HMGET', state_key, 'c', 'e')
  local a, env = c[1], c[2]
  if a and #a >= A_COLD and env and #env == ENV_A then
    local at = 2 + 8 * LIMIT_FIELDS
    redis.call('HSET', state_key, 'c', sub(a, 1, at) .. pack('>d', -1) .. sub(a, at + 9), 'e', '\0' .. sub(env, 2))
  end
end

---------------------------------------------------------------------------------------------------------------------
-- A tenant's fields ('c:<tenant>' cold, 'h:<tenant>' hot): its block, its own limits (cached), its logs, the ids
-- of its permits. The tenantless scope (the empty id) has them for its block; its windows are disabled and it holds
-- no permits.

-- From the cold field `c`, the envelope `env` and the hot field `h`.
local function read_tenant(c, env, h)
  reset_log(TM, K_MRING)
  reset_log(TD, K_DRING)
  T.np, T.pids, T.live, T.pids_changed, T.permits_until = 0, '', nil, false, nil
  if c and #c >= T_COLD and string.byte(c, 1) == FORMAT and env and #env == ENV_T and h and #h >= HOT_COUNTS then
    local _, mfront, dfront
    _, T.bu, T.br, T.ogen, T.om, T.od, T.oc, T.oset, T.kexp,
      TM.base, TM.pr, TM.ps, TM.pn, TM.fr, TM.fs, TM.fnum, TM.ff, TM.pl, TM.cn, mfront,
      TD.base, TD.pr, TD.ps, TD.pn, TD.fr, TD.fs, TD.fnum, TD.ff, TD.pl, TD.cn, dfront = sunpack(TEN_FMT, c)
    if T.kexp > now then -- else its state is past mattering (and its rings have expired)
      local tnm, tnd, np = sunpack(HOT_COUNTS_FMT, h)
      -- An envelope of another config generation is written again, under this one.
      T.np, T.cold, T.env, T.exists, T.stale = np, c, env, true, false
      T.dirty = envelope_of(env).cgen ~= A.cgen
      TM.front, TD.front = sub(mfront, 1, 4 * TM.cn), sub(dfront, 1, 4 * TD.cn)
      local mend = HOT_COUNTS + 4 * tnm
      TM.tail, TM.tn = sub(h, HOT_COUNTS + 1, mend), tnm
      if tnd == SHARED_TAIL then
        TD.tail, TD.tn, T.pids = TM.tail, tnm, sub(h, mend + 1)
      else
        TD.tail, TD.tn, T.pids = sub(h, mend + 1, mend + 4 * tnd), tnd, sub(h, mend + 4 * tnd + 1)
      end
      return
    end
    reset_log(TM, K_MRING)
    reset_log(TD, K_DRING)
  end
  -- A header past its time: its rings may outlive it on the manual clock (TTLs run in real time); the commit deletes
  -- them.
  T.bu, T.br, T.ogen, T.om, T.od, T.oc, T.oset, T.kexp, T.cold = 0, 0, 0, 0, 0, 0, 0, 0, nil
  T.exists = h ~= nil or c ~= nil or env ~= nil
  T.stale, T.dirty = T.exists, true
end

-- What the common grant may take for granted of the tenant until the next write of its cold field: its limits
-- under this config generation, its block, no call booked, room in its logs, how long its state lives.
local function tenant_envelope()
  local usable = TM.fnum == 0 and TD.fnum == 0
  local floor_ = max(TM.pn > 0 and TM:decode(TM.pl) or 0, TD.pn > 0 and TD:decode(TD.pl) or 0)
  return envelope_bytes(ENV_T_FMT, ENV_T_NAMES, { format = usable and FORMAT or 0, kexp = T.kexp, cgen = A.cgen,
    block_until = T.bu, floor = floor_, mbase = TM.base, dbase = TD.base, minute = TL.minute, day = TL.day,
    concurrency = TL.conc, mroom = max(TL.minute - TM.pn, 0), droom = max(TL.day - TD.pn, 0), mring = TM.pn,
    dring = TD.pn })
end

-- The tenant's fields: the cold one and the envelope when they changed (else nil), the hot one.
local function tenant_header()
  local cold, env
  if T.dirty or TM.dirty or TD.dirty then
    local v = { FORMAT, T.bu, T.br, T.ogen, T.om, T.od, T.oc, T.oset, T.kexp }
    TD:fields(v, TM:fields(v, 9))
    T.cold, T.env = pack(TEN_FMT, unpack(v)), tenant_envelope()
    cold, env = T.cold, T.env
  end
  -- Where both windows count, every call goes into both tails: mostly the same calls, stored once then.
  if TL.minute > 0 and TL.day > 0 and TM.tail == TD.tail then
    return cold, env, pack(HOT_COUNTS_FMT, TM.tn, SHARED_TAIL, T.np) .. TM.tail .. T.pids
  end
  return cold, env, pack(HOT_COUNTS_FMT, TM.tn, TD.tn, T.np) .. TM.tail .. TD.tail .. T.pids
end

---------------------------------------------------------------------------------------------------------------------
-- Opening an operation.

-- Reads the clock and the headers (one HMGET of the state hash, with `trace` .. the operation id: the field an
-- earlier run of this operation would have left), the config when due, and the scope's limits. Returns that
-- field's value. The common grant that gave up passes the clock and what it read: the app's envelope and hot
-- field, the tenant's.
local function begin(keys, args, trace, read_now, read)
  setup()
  K_CFG, K_STATE, K_ARING, K_MRING, K_DRING = keys[1], keys[2], keys[3], keys[4], keys[5]
  ECHO = args[1]
  RETRY = sub(ECHO, 1, 2) == 'r:'
  OP = RETRY and sub(ECHO, 3) or ECHO
  MANUAL = args[2] ~= ''
  TENANTLESS = args[3] == ''
  F_TENANT, F_COLD, F_ENV, F_OWN = 'h:' .. args[3], 'c:' .. args[3], 'e:' .. args[3], 'o:' .. args[3]
  RESULT_TTL = tonumber(args[4]) or 0
  EPOCH = args[5] ~= '' and tonumber(args[5]) or nil
  WN = 0
  if read_now then
    now = read_now
  elseif MANUAL then
    now = tonumber(args[2])
  else
    local t = redis.call('TIME')
    now = t[1] * 1000 + floor(t[2] / 1000)
  end
  local c, cold
  if read then
    c, cold = read, redis.call('HMGET', K_STATE, 'c', F_COLD, trace and trace .. OP or 'c')
  else
    c = redis.call('HMGET', K_STATE, 'e', 'a', F_ENV, F_TENANT, 'c', F_COLD, trace and trace .. OP or 'a')
    cold = { c[5], c[6], c[7] }
  end
  read_app(cold[1], c[1], c[2])
  if not A.lim or A.cread < 0 or now - A.cread >= CONFIG_REFRESH_MS or now < A.cread then load_config() end
  if (A.clock == 1) == MANUAL then
    fail('XG_CLOCK_MISMATCH this key prefix runs on the ' .. (A.clock == 1 and 'server' or 'manual') .. ' clock')
  end
  -- Before anything is written: the caller stores its overrides again (init), then sends this call again.
  if EPOCH and EPOCH ~= A.epoch then fail('XG_EPOCH the config of this key prefix was lost and stored again') end
  -- Time never runs backwards: not after a failover to a host with another clock, not between callers.
  now = max(now, A.floor, AM:newest_past() or 0)
  local lim = A.lim
  L.minute_window, L.minute_span = lim[2], lim[2] + lim[3]
  L.day_window, L.day_span = lim[5], lim[5] + lim[6]
  L.app_limit, L.app_window, L.app_span = lim[8], lim[9], lim[9] + lim[10]
  L.permit_timeout = lim[11]
  read_tenant(cold[2], c[3], c[4])
  now = max(now, TM:newest_past() or 0, TD:newest_past() or 0)
  -- The scope's limits (engine.rs scope_limits): none but the app window for a tenantless call, the tenant's own
  -- (read again when any override changed since they were cached), or the app's defaults.
  if TENANTLESS then
    TL.minute, TL.day, TL.conc = 0, 0, 0
  else
    if A.ogen ~= 0 and T.ogen ~= A.ogen then
      local m, d, cc = string.match(redis.call('HGET', K_CFG, F_OWN) or '', '^(%d+),(%d+),(%d+)')
      T.ogen, T.oset, T.om, T.od, T.oc = A.ogen, m and 1 or 0, tonumber(m) or 0, tonumber(d) or 0, tonumber(cc) or 0
      T.dirty = true
    end
    if A.ogen ~= 0 and T.oset == 1 then
      TL.minute, TL.day, TL.conc = T.om, T.od, T.oc
    else
      TL.minute, TL.day, TL.conc = lim[1], lim[4], lim[7]
    end
  end
  return trace and cold[3]
end

---------------------------------------------------------------------------------------------------------------------
-- Permits.

-- The tenant's permits still held: their expiries, ascending. The header's list also holds released and expired
-- ones until this recount (the list's length bounds the count, so it is needed only at the limit).
local function held_permits()
  if T.live then return T.live end
  local ids, fields = {}, {}
  for id in string.gmatch(T.pids, '([^,]+),') do
    ids[#ids + 1], fields[#fields + 1] = id, 'p:' .. id
  end
  local live, kept = {}, {}
  if #fields > 0 then
    local v = redis.call('HMGET', K_STATE, unpack(fields))
    for i = 1, #ids do
      local expires = permit_expiry(v[i])
      if expires and expires > now then live[#live + 1], kept[#kept + 1] = expires, ids[i] .. ',' end
    end
  end
  table.sort(live)
  if #kept ~= T.np then T.pids, T.np, T.pids_changed = table.concat(kept), #kept, true end
  T.live = live
  return live
end

-- Calls in flight: permits that have not expired.
local function in_flight()
  if TENANTLESS then return 0 end
  return #held_permits()
end

-- Holds permit OP until `expires` (its field is written with the headers).
local function hold_permit(expires)
  if T.np >= max(TL.conc, 16) then held_permits() end -- keeps the list short without a limit to recount at
  T.pids, T.np, T.pids_changed = T.pids .. OP .. ',', T.np + 1, true
  W[WN + 1], W[WN + 2], WN = 'p:' .. OP, pack('>d', expires), WN + 2
  T.permits_until = max(T.permits_until or 0, expires)
end

---------------------------------------------------------------------------------------------------------------------
-- The engine's rules (engine.rs).

-- When the tenant's in-flight count drops below its limit by expiry alone.
local function concurrency_free_at(t)
  local limit = TL.conc
  if limit == 0 or T.np < limit then return t end
  -- Ascending: the permits that outlive t are a suffix, and the limit-th latest of them is the limit-th latest.
  local live = held_permits()
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
  if TM:booked_after(now) >= MAX_BOOKINGS then return TM:next_booked(now) - now end
  if TD:booked_after(now) >= MAX_BOOKINGS then return TD:next_booked(now) - now end
  if AM:booked_after(now) >= MAX_APP_BOOKINGS then return AM:next_booked(now) - now end
  return nil
end

-- Removes a booking at `at` from every window it was counted in (a cancelled reservation).
local function unbook(at)
  TM:remove(at)
  TD:remove(at)
  AM:remove(at)
end

-- Adds the calls the server saw (limit - remaining) and we did not (engine.rs add_phantoms): at now in a window up
-- to PHANTOMS_AT_NOW_UP_TO_MS, else spread evenly over it (the k-th of n window - max(1, k * step) before now, step
-- = window / (n + 1)).
local function add_phantoms(log, limit, window, remaining)
  if remaining < 0 or limit == 0 then return end
  local seen = max(limit - remaining, 0)
  local n = seen - log:count_at(now, window)
  if n <= 0 then return end
  if window <= PHANTOMS_AT_NOW_UP_TO_MS then
    log:insert(now, n, limit)
    return
  end
  local step, at = floor(window / (n + 1)), {}
  for k = 1, n do at[k] = now - min(now, window - max(1, k * step)) end
  log:insert_past(at, limit)
end

---------------------------------------------------------------------------------------------------------------------
-- Results, for the operations without a permit to find: kept RESULT_TTL (a few deadlines: as long as a retry, or
-- an original that arrives after its retry, can come); every attempt reads its field first (begin's `extra`).

local function replay(stored)
  local json = stored and string.match(stored, '^%d+:(.*)$')
  return json and cjson.decode(json)
end

local function remember(result)
  W[WN + 1], W[WN + 2], WN = 'r:' .. OP, (now + RESULT_TTL) .. ':' .. cjson.encode(result), WN + 2
  return result
end

---------------------------------------------------------------------------------------------------------------------
-- Writing back.

-- Forgets a few expired fields of the state hash (one HSCAN step, as the app's ring is written).
local function sweep()
  local step = redis.call('HSCAN', K_STATE, A.sweep, 'COUNT', SWEEP_COUNT)
  A.sweep, A.dirty = tonumber(step[1]), true
  local kv, gone = step[2], {}
  for i = 1, #kv, 2 do
    local field, value = kv[i], kv[i + 1]
    local kind, expiry = sub(field, 1, 2), nil
    if kind == 'e:' and #value == ENV_T then
      expiry = sunpack('>d', value, ENV_T_KEXP_AT)
      -- With its cold and hot fields.
      if expiry <= now and field ~= F_ENV then
        gone[#gone + 1], gone[#gone + 2] = 'c:' .. sub(field, 3), 'h:' .. sub(field, 3)
      end
    elseif kind == 'p:' then
      expiry = permit_expiry(value)
    elseif kind == 'b:' then
      expiry = tonumber(value)
    elseif kind == 'r:' then
      expiry = tonumber(string.match(value, '^(%d+):'))
    end
    if expiry and expiry <= now and field ~= F_ENV then gone[#gone + 1] = field end
  end
  if #gone > 0 then redis.call('HDEL', K_STATE, unpack(gone)) end
end

-- The end of every operation that writes: the headers and the fields it made (one HSET), the TTLs when they must
-- grow (about once a minute: up to TTL_SLACK_MS beyond what is needed), emptied state given back.
local function commit()
  local gone
  -- Logs whose ring was written are pruned too (decisions never need it: see prune_logs).
  if AM.flushed or AM.rewritten then AM:prune(L.app_span) end
  if TM.flushed or TM.rewritten then TM:prune(L.minute_span) end
  if TD.flushed or TD.rewritten then TD:prune(L.day_span) end
  -- The tenant.
  if T.stale then
    if not TM.rewritten then redis.call('DEL', TM.key) end
    if not TD.rewritten then redis.call('DEL', TD.key) end
  end
  TM:tidy()
  TD:tidy()
  local keep = max(TM.grew_to and TM.grew_to + L.minute_span or 0, TD.grew_to and TD.grew_to + L.day_span or 0,
    T.bu, T.permits_until or 0) + GRACE_MS
  if TM:is_empty() and TD:is_empty() and T.bu <= now and T.np == 0 then
    if T.exists then gone = F_TENANT end
  else
    if T.kexp < keep then
      T.kexp, T.dirty = keep + min(TTL_SLACK_MS, max(L.minute_span, L.day_span)), true
    end
    if T.dirty or TM.dirty or TD.dirty or TM.changed or TD.changed or T.pids_changed then
      local cold, env, hot = tenant_header()
      W[WN + 1], W[WN + 2], WN = F_TENANT, hot, WN + 2
      if cold then W[WN + 1], W[WN + 2], W[WN + 3], W[WN + 4], WN = F_COLD, cold, F_ENV, env, WN + 4 end
    end
    if TM.pr + TM.fr > 0 and (TM.rewritten or T.dirty) then redis.call('PEXPIRE', TM.key, T.kexp - now) end
    if TD.pr + TD.fr > 0 and (TD.rewritten or T.dirty) then redis.call('PEXPIRE', TD.key, T.kexp - now) end
  end
  -- The app (the floor: a call appended at now covers it; else it is stored).
  AM:tidy()
  if not AM.changed and now > A.floor then A.dirty = true end
  A.floor = max(A.floor, now)
  if AM.flushed then sweep() end
  keep = max(keep, AM.grew_to and AM.grew_to + L.app_span or 0, now + RESULT_TTL + GRACE_MS, T.kexp)
  local expire = A.kexp < keep
  if expire then A.kexp, A.dirty = keep + TTL_SLACK_MS, true end
  local cold, env, hot = app_header()
  W[WN + 1], W[WN + 2], WN = 'a', hot, WN + 2
  if cold then W[WN + 1], W[WN + 2], W[WN + 3], W[WN + 4], WN = 'c', cold, 'e', env, WN + 4 end
  redis.call('HSET', K_STATE, unpack(W, 1, WN))
  if gone then redis.call('HDEL', K_STATE, gone, F_COLD, F_ENV) end
  if expire then redis.call('PEXPIRE', K_STATE, A.kexp - now) end
  if AM.pr + AM.fr > 0 and (expire or AM.rewritten) then redis.call('PEXPIRE', K_ARING, A.kexp - now) end
end

local OPS = {}
