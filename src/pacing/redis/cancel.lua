-- cancel: ARGV[5] = the booked instant. Returns {op, now, 1} when freed, {op, now, 0} when its time has come.
function OPS.cancel(keys, args)
  local previous = replay(begin(keys, args, 'r:'))
  if previous then return previous end
  local at = tonumber(args[5])
  if at <= now then return { ECHO, now, 0 } end
  unbook(at)
  local result = remember({ ECHO, now, 1 })
  commit()
  return result
end
