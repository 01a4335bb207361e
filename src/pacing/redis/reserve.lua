-- reserve: books the next free slot (no concurrency). Returns {op, now, 1, at}; without writing, {op, now, 0,
-- wait} beyond the booking horizon, {op, now, 2, wait} past the bookings cap (wait: until the next comes due). The
-- reservation's id is the operation id: a booking ahead is kept under it ('b:<id>' = its instant) for cancel.
function OPS.reserve(keys, args)
  local previous = replay(begin(keys, args, 'r:'))
  if previous then return previous end
  local due = check_bookings()
  if due then return { ECHO, now, 2, due } end
  local at = earliest(false)
  if at - now > HORIZON_MS then return { ECHO, now, 0, at - now } end
  record_call(at, 1)
  if at > now then W[WN + 1], W[WN + 2], WN = 'b:' .. OP, at, WN + 2 end
  local result = remember({ ECHO, now, 1, at })
  commit()
  return result
end
