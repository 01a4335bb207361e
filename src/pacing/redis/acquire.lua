-- acquire: the permit id is the operation id. Returns {op, now, 1, expiry} (expiry 0: a tenantless call holds no
-- permit) or {op, now, 0, wait, reason}; a refusal writes nothing. A grant finds an earlier run of the same
-- operation in the permits (ZADD NX); a retried refusal looks there too: the first attempt may have been granted.
function OPS.acquire(keys, args)
  begin(keys, args)
  if TENANTLESS then
    local previous = replay()
    if previous then return previous end
  end
  open_scope()
  local at, reason = earliest(true)
  if at > now then
    if RETRY and not TENANTLESS then
      local held = redis.call('ZSCORE', K_PRM, OP)
      if held then return { ECHO, now, 1, tonumber(held) } end
    end
    return { ECHO, now, 0, at - now, reason }
  end
  local expires = 0
  if not TENANTLESS then
    expires = now + L.permit_timeout
    if not hold_permit(expires) then return { ECHO, now, 1, tonumber(redis.call('ZSCORE', K_PRM, OP)) } end
  end
  record_call(now, 1)
  commit()
  if TENANTLESS then return remember({ ECHO, now, 1, 0 }) end
  return { ECHO, now, 1, expires }
end
