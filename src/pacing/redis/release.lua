-- release: ARGV[4] = the permit id. Returns {op, now, 1} when it was held, {op, now, 0} when unknown or expired.
local previous = replay()
if previous then return previous end
local expires = tonumber(redis.call('ZSCORE', K_TP, ARGV[4]))
redis.call('ZREM', K_TP, ARGV[4])
return remember({ OP, now, (expires and expires > now) and 1 or 0 })
