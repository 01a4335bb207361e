-- observe: the server's feedback as effects (engine.rs Effects): ARGV[4..7] = tenant block (wait, reason), app
-- block (wait, reason), reason 0 = none; ARGV[8..10] = minute, day, app-minute remaining, -1 = not to apply.
local previous = replay()
if previous then return previous end
open_scope()
commit_floor()
local function extend(wait, reason, current, write)
  wait, reason = tonumber(wait), tonumber(reason)
  if reason == 0 then return end
  local until_ = now + wait
  if not current[1] or until_ > current[1] then write(until_, reason) end
end
extend(ARGV[4], ARGV[5], tenant_block, function(until_, reason)
  redis.call('HSET', K_TS, 'bu', until_, 'br', reason)
  redis.call('PEXPIRE', K_TS, math.max(until_ - now, 1) + 1000)
end)
extend(ARGV[6], ARGV[7], app_block, function(until_, reason)
  redis.call('HSET', K_CFG, 'ab', until_, 'abr', reason)
end)
add_phantoms(TM, TL.minute, L.minute_window, tonumber(ARGV[8]))
add_phantoms(TD, TL.day, L.day_window, tonumber(ARGV[9]))
add_phantoms(AM, L.app_limit, L.app_window, tonumber(ARGV[10]))
flush_logs()
return remember({ OP, now })
