-- reserve: books the next free slot (no concurrency). Returns {op, now, 1, at}; without writing, {op, now, 0,
-- wait} beyond the booking horizon, {op, now, 2, wait} past the bookings cap (wait: until the next comes due).
function OPS.reserve(keys, args)
  begin(keys, args)
  local previous = replay()
  if previous then return previous end
  open_scope()
  local due = check_bookings()
  if due then return { ECHO, now, 2, due } end
  local at = earliest(false)
  if at - now > HORIZON_MS then return { ECHO, now, 0, at - now } end
  record_call(at, 1)
  commit()
  return remember({ ECHO, now, 1, at })
end
