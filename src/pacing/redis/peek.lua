-- peek: what acquire would answer, writing nothing. Returns {op, now, wait, reason} (wait 0: it would be granted).
function OPS.peek(keys, args)
  begin(keys, args)
  local at, reason = earliest(true)
  if at > now then return { ECHO, now, at - now, reason } end
  return { ECHO, now, 0, 0 }
end
