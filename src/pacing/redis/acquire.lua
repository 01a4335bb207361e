-- acquire: the permit id is the operation id. Returns {op, now, 1, expiry} (expiry 0: a tenantless call holds no
-- permit) or {op, now, 0, wait, reason}; a refusal writes nothing. An earlier run of the same operation that was
-- granted left its permit (or, tenantless, a marker) in the state hash: then this one answers as it did.

-- The newest past call of a log read off its header: of its tail (`tn` entries at `at` of `bytes`) or its ring.
local function newest_in(base, pn, pl, tn, bytes, at)
  if tn > 0 then return base + (sunpack('>I4', bytes, at + 4 * (tn - 1)) - base) % U32 end
  if pn > 0 then return base + (pl - base) % U32 end
  return 0
end

-- A window that counts must hold some calls (an empty one takes a new base), none booked, fewer than its limit,
-- and room in its tail.
local function fits_at_once(now, limit, base, pn, tn, fnum)
  return limit == 0 or (fnum == 0 and pn + tn > 0 and pn + tn < limit and tn < TAIL and now - base < U32)
end

-- The common grant, read off the headers without building the engine's state: every window of the scope holds
-- fewer calls than its limit and none booked (Window::earliest answers `t` at once), no block is on, the tenant's
-- permits are below its limit, every tail has room, and every TTL reaches far enough that the commit would extend
-- none. That is the engine's own shortest way through, so the decision and the bytes stored are its. Anything
-- else, and what it read, go to the engine: returns nil, now, the HMGET's reply.
local function granted_at_once(keys, args)
  setup()
  local op, name = args[1], args[3]
  -- A retry looks for its first attempt under another name, a tenantless call holds no permit: the engine's.
  if name == '' or sub(op, 1, 2) == 'r:' then return nil end
  local now
  if args[2] ~= '' then
    now = tonumber(args[2])
  else
    local t = redis.call('TIME')
    now = t[1] * 1000 + floor(t[2] / 1000)
  end
  local hfield, pfield = 'h:' .. name, 'p:' .. op
  local c = redis.call('HMGET', keys[2], 'a', hfield, pfield)
  local a, h = c[1], c[2]
  if c[3] or not a or not h or #a < A_COLD or #h < 4 + T_COLD
    or string.byte(a, 1) ~= FORMAT or string.byte(h, 5) ~= FORMAT or (string.byte(a, 2) == 1) ~= (args[2] == '') then
    return nil, now, c
  end
  local lim = LIMITS[sub(a, 3, 2 + 8 * LIMIT_FIELDS)]
  if not lim then return nil, now, c end
  local cread, afloor, ab, _, aogen, akexp, _, aepoch, abase, _, _, apn, _, _, afnum, _, apl = sunpack(APP_REST_FMT,
    a, 3 + 8 * LIMIT_FIELDS)
  local atn = (#a - A_COLD) / 4
  local tnm, tnd, np = sunpack('>BBH', h)
  local _, bu, _, ogen, om, od, oc, oset, kexp, mbase, _, _, mpn, _, _, mfnum, _, mpl, _, _, dbase, _, _, dpn, _, _,
    dfnum, _, dpl = sunpack(TEN_FMT, h, 5)
  if cread < 0 or now < cread or now - cread >= CONFIG_REFRESH_MS or (aogen ~= 0 and ogen ~= aogen)
    or (args[5] ~= '' and tonumber(args[5]) ~= aepoch) then
    return nil, now, c
  end
  -- Time never runs backwards (as begin): the floor and the newest calls of every log.
  local tails = 5 + T_COLD
  now = max(now, afloor, newest_in(abase, apn, apl, atn, a, A_COLD + 1), newest_in(mbase, mpn, mpl, tnm, h, tails),
    newest_in(dbase, dpn, dpl, tnd, h, tails + 4 * tnm))
  local mlim, dlim, conc = lim[1], lim[4], lim[7]
  if aogen ~= 0 and oset == 1 then mlim, dlim, conc = om, od, oc end
  local expires, result_ttl = now + lim[11], tonumber(args[4]) or 0
  local keep = max(now + lim[2] + lim[3], now + lim[5] + lim[6], bu, expires) + GRACE_MS
  if ab > now or bu > now or kexp < keep or akexp < max(keep, kexp, now + lim[9] + lim[10] + GRACE_MS,
      now + result_ttl + GRACE_MS) or lim[8] == 0
    or not (fits_at_once(now, lim[8], abase, apn, atn, afnum) and fits_at_once(now, mlim, mbase, mpn, tnm, mfnum)
      and fits_at_once(now, dlim, dbase, dpn, tnd, dfnum)) then
    return nil, now, c
  end
  -- Where the day tail and the permit ids start.
  local at = tails + 4 * tnm
  local ids_at = at + 4 * tnd
  local pids = sub(h, ids_at)
  if (conc > 0 and np >= conc) or np >= max(conc, 16) then
    -- The list bounds the permits in flight: at the limit, ask which are still held (the engine's held_permits).
    local ids, fields = {}, {}
    for id in string.gmatch(pids, '([^,]+),') do ids[#ids + 1], fields[#fields + 1] = id, 'p:' .. id end
    local held = redis.call('HMGET', keys[2], unpack(fields))
    local kept = {}
    for i = 1, #ids do
      local until_ = tonumber(held[i])
      if until_ and until_ > now then kept[#kept + 1] = ids[i] .. ',' end
    end
    if conc > 0 and #kept >= conc then return nil, now, c end
    pids, np = table.concat(kept), #kept
  end
  -- The header written as one concatenation of its parts (one new string): counts, the cold part and the minute
  -- tail, the day tail, the permit ids, each tail with the call appended where its window counts.
  local entry = pack('>I4', now % U32)
  local mentry, dentry = '', ''
  if mlim > 0 then mentry, tnm = entry, tnm + 1 end
  if dlim > 0 then dentry, tnd = entry, tnd + 1 end
  redis.call('HSET', keys[2], pfield, expires, 'a', a .. entry, hfield,
    pack('>BBH', tnm, tnd, np + 1) .. sub(h, 5, at - 1) .. mentry .. sub(h, at, ids_at - 1) .. dentry .. pids .. op
    .. ',')
  return { op, now, 1, expires }
end

function OPS.acquire(keys, args)
  local reply, read_now, read = granted_at_once(keys, args)
  if reply then return reply end
  local held = begin(keys, args, 'p:', read_now, read)
  if held then return { ECHO, now, 1, TENANTLESS and 0 or tonumber(held) } end
  local at, reason = earliest(true)
  if at > now then return { ECHO, now, 0, at - now, reason } end
  local expires = 0
  if TENANTLESS then
    W[WN + 1], W[WN + 2], WN = 'p:' .. OP, now + RESULT_TTL, WN + 2
  else
    expires = now + L.permit_timeout
    hold_permit(expires)
  end
  record_call(now, 1)
  commit()
  return { ECHO, now, 1, expires }
end
