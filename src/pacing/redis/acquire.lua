-- acquire: the permit id is the operation id. Returns {op, now, 1, expiry} (expiry 0: a tenantless call holds no
-- permit) or {op, now, 0, wait, reason}; a refusal writes nothing. An earlier run of the same operation that was
-- granted left its permit (or, tenantless, a marker) in the state hash: then this one answers as it did.
function OPS.acquire(keys, args)
  local held = begin(keys, args, 'p:')
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
