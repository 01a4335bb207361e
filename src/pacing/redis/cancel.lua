-- cancel: ARGV[4] = the booked instant. Returns {op, now, 1} when freed, {op, now, 0} when its time has come.
local previous = replay()
if previous then return previous end
local at = tonumber(ARGV[4])
if at <= now then return remember({ OP, now, 0 }) end
open_scope()
commit_floor()
TM:remove(at)
TD:remove(at)
AM:remove(at)
flush_logs()
return remember({ OP, now, 1 })
