-- record: ARGV[6] = how many calls made outside the limiter to count now (they count even over a limit).
function OPS.record(keys, args)
  local previous = replay(begin(keys, args, 'r:'))
  if previous then return previous end
  record_call(now, tonumber(args[6]))
  local result = remember({ ECHO, now })
  commit()
  return result
end
