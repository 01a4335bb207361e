-- peek: what acquire would answer, writing nothing. Returns {op, now, wait, reason} (wait 0: it would be granted).
open_scope()
local at, reason = earliest(true)
if at > now then return { OP, now, at - now, reason } end
return { OP, now, 0, 0 }
