-- record: ARGV[5] = how many calls made outside the limiter to count now (they count even over a limit).
function OPS.record(keys, args)
  begin(keys, args)
  local previous = replay()
  if previous then return previous end
  open_scope()
  record_call(now, tonumber(args[5]))
  commit()
  return remember({ ECHO, now })
end
