-- cancel: ARGV[5] = the booked instant. Returns {op, now, 1} when freed, {op, now, 0} when its time has come.
function OPS.cancel(keys, args)
  begin(keys, args)
  local previous = replay()
  if previous then return previous end
  local at = tonumber(args[5])
  if at <= now then return remember({ ECHO, now, 0 }) end
  open_scope()
  unbook(at)
  commit()
  return remember({ ECHO, now, 1 })
end
