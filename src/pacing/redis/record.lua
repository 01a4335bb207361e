-- record: ARGV[4] = how many calls made outside the limiter to count now (they count even over a limit).
local previous = replay()
if previous then return previous end
open_scope()
commit_floor()
record_call(now, tonumber(ARGV[4]))
flush_logs()
return remember({ OP, now })
