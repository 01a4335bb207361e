-- cancel: ARGV[6] = the reservation's id (its reserve's operation id). Returns {op, now, 1} when freed, {op, now,
-- 0} when there is no such booking ahead (never made, cancelled already, or its time has come): a cancel sent twice
-- frees one booking, never another reservation's at the same instant.
function OPS.cancel(keys, args)
  local previous = replay(begin(keys, args, 'r:'))
  if previous then return previous end
  local field = 'b:' .. args[6]
  local at = tonumber(redis.call('HGET', K_STATE, field))
  if not at or at <= now then return { ECHO, now, 0 } end
  unbook(at)
  redis.call('HDEL', K_STATE, field)
  local result = remember({ ECHO, now, 1 })
  commit()
  return result
end
