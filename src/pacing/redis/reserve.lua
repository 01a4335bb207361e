-- reserve: books the next free slot (no concurrency). Returns {op, now, 1, at} or, beyond the booking horizon,
-- {op, now, 0, wait} without writing.
local previous = replay()
if previous then return previous end
open_scope()
local at = earliest(false)
if at - now > HORIZON then return { OP, now, 0, at - now } end
commit_floor()
record_call(at, 1)
flush_logs()
return remember({ OP, now, 1, at })
