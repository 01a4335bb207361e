-- acquire: the permit id is the operation id. Returns {op, now, 1, expiry} (expiry 0: a tenantless call holds no
-- permit) or {op, now, 0, wait, reason}; a refusal writes nothing. An earlier run of the same operation that was
-- granted left its permit (or, tenantless, a marker) in the state hash: then this one answers as it did.

-- The common grant, decided by the envelopes (engine.lua app_envelope, tenant_envelope) and the hot fields without
-- building the engine's state: the config fresh and of the generation the tenant's envelope was written under, no
-- block on, no call booked, every window below its limit, the tenant's permits below its limit, every tail with
-- room, and every TTL far enough that the commit would extend none. That is the engine's own shortest way through,
-- so the decision and the bytes stored are its. Anything else, and what it read, go to the engine: returns nil,
-- now, the HMGET's reply. It runs on most calls: comparisons inline, no number parsed or printed twice, few bytes.
local function granted_at_once(keys, args)
  setup()
  local op, name = args[1], args[3]
  -- A retry looks for its first attempt under another name, a tenantless call holds no permit: the engine's.
  if name == '' or sub(op, 1, 2) == 'r:' then return nil end
  local now
  local manual = args[2] ~= ''
  if manual then
    now = tonumber(args[2])
  else
    local t = redis.call('TIME')
    now = t[1] * 1000 + floor(t[2] / 1000)
  end
  local hfield = 'h:' .. name
  local c = redis.call('HMGET', keys[2], 'e', 'a', 'e:' .. name, hfield)
  local ae, a, te, h = c[1], c[2], c[3], c[4]
  if not ae or not a or not te or not h or #ae ~= ENV_A or #te ~= ENV_T or #h < HOT_COUNTS then return nil, now, c end
  -- Parsed once per distinct envelope: most calls find theirs (an envelope changes when its cold field does).
  local ea, et = envelope_of(ae), envelope_of(te)
  local cread = ea.cread
  if ea.format ~= FORMAT or et.format ~= FORMAT or (ea.clock == 1) == manual or now < cread
    or now - cread >= CONFIG_REFRESH_MS or et.cgen ~= ea.cgen or (args[5] ~= '' and number_of(args[5]) ~= ea.epoch) then
    return nil, now, c
  end
  local tnm, tnd, np = sunpack(HOT_COUNTS_FMT, h)
  local mlim, dlim, conc = et.minute, et.day, et.concurrency
  -- One tail for both windows (engine.lua tenant_header) stays one only while both count this call.
  local shared = tnd == SHARED_TAIL
  if shared then
    if mlim == 0 or dlim == 0 then return nil, now, c end
    tnd = tnm
  end
  -- Time never runs backwards (as begin): the floors (with the rings' newest calls) and the tails' newest calls.
  local atn, mend = #a / 4, HOT_COUNTS + 4 * tnm
  local dend = shared and mend or mend + 4 * tnd
  local abase, mbase, dbase = ea.base, et.mbase, et.dbase
  -- Log:decode inline, here and below: a function call per call costs more than the line.
  if ea.floor > now then now = ea.floor end
  if et.floor > now then now = et.floor end
  if atn > 0 then
    local t = abase + (sunpack('>I4', a, #a - 3) - abase) % U32
    if t > now then now = t end
  end
  if tnm > 0 then
    local t = mbase + (sunpack('>I4', h, mend - 3) - mbase) % U32
    if t > now then now = t end
  end
  if tnd > 0 and not shared then
    local t = dbase + (sunpack('>I4', h, dend - 3) - dbase) % U32
    if t > now then now = t end
  end
  -- The engine's commit would extend no TTL: the tenant's state outlives what this call adds, the state hash the
  -- tenant's, the app's window and this call's result.
  local kexp, akexp = et.kexp, ea.kexp
  if ea.block_until > now or et.block_until > now or kexp < now + ea.tenant_reach or akexp < now + ea.app_reach
    or akexp < kexp or akexp < now + (number_of(args[4]) or 0) + GRACE_MS
    -- Every window that counts: some calls in it (an empty one takes a new base), fewer than its limit, room in
    -- its tail, the instant within 2^32 ms of its base (inline for the same reason).
    or ea.ring + atn == 0 or atn >= ea.room or atn >= TAIL or now - abase >= U32
    or (mlim > 0 and (et.mring + tnm == 0 or tnm >= et.mroom or tnm >= TAIL or now - mbase >= U32))
    or (dlim > 0 and (et.dring + tnd == 0 or tnd >= et.droom or tnd >= TAIL or now - dbase >= U32)) then
    return nil, now, c
  end
  local pids = sub(h, dend + 1)
  -- This operation sent again (the same command, not a retry) finds its permit in the list while it is held: the
  -- engine answers it as before (an id that merely ends alike sends a call there too, which costs only time).
  if string.find(pids, op .. ',', 1, true) then return nil, now, c end
  if np >= conc and (conc > 0 or np >= 16) then
    -- The list bounds the permits in flight: at the limit, ask which are still held (the engine's held_permits).
    local ids, fields = {}, {}
    for id in string.gmatch(pids, '([^,]+),') do ids[#ids + 1], fields[#fields + 1] = id, 'p:' .. id end
    local held = redis.call('HMGET', keys[2], unpack(fields))
    local kept = {}
    for i = 1, #ids do
      local until_ = permit_expiry(held[i])
      if until_ and until_ > now then kept[#kept + 1] = ids[i] .. ',' end
    end
    if conc > 0 and #kept >= conc then return nil, now, c end
    pids, np = table.concat(kept), #kept
  end
  -- Each tail with the call appended where its window counts, the permit's id appended to the list.
  local expires = now + ea.permit_timeout
  local entry = pack('>I4', now % U32)
  local hot
  if shared then
    hot = pack(HOT_COUNTS_FMT, tnm + 1, SHARED_TAIL, np + 1) .. sub(h, HOT_COUNTS + 1, mend) .. entry .. pids .. op
      .. ','
  else
    local mentry, dentry = '', ''
    if mlim > 0 then mentry, tnm = entry, tnm + 1 end
    if dlim > 0 then dentry, tnd = entry, tnd + 1 end
    hot = pack(HOT_COUNTS_FMT, tnm, tnd, np + 1) .. sub(h, HOT_COUNTS + 1, mend) .. mentry .. sub(h, mend + 1, dend)
      .. dentry .. pids .. op .. ','
  end
  redis.call('HSET', keys[2], 'p:' .. op, pack('>d', expires), 'a', a .. entry, hfield, hot)
  return { op, now, 1, expires }
end

function OPS.acquire(keys, args)
  local reply, read_now, read = granted_at_once(keys, args)
  if reply then return reply end
  local held = begin(keys, args, 'p:', read_now, read)
  if held then return { ECHO, now, 1, TENANTLESS and 0 or permit_expiry(held) or 0 } end
  local at, reason = earliest(true)
  if at > now then return { ECHO, now, 0, at - now, reason } end
  local expires = 0
  if TENANTLESS then
    W[WN + 1], W[WN + 2], WN = 'p:' .. OP, pack('>d', now + RESULT_TTL), WN + 2
  else
    expires = now + L.permit_timeout
    hold_permit(expires)
  end
  record_call(now, 1)
  commit()
  return { ECHO, now, 1, expires }
end
