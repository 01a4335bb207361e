-- acquire: ARGV[4] = the permit id to hold if granted. Returns {op, now, 1, permit} or {op, now, 0, wait, reason};
-- a refusal writes nothing.
local previous = replay()
if previous then return previous end
local expired = open_scope()
local at, reason = earliest(true)
if at > now then return { OP, now, 0, at - now, reason } end
commit_floor()
record_call(now, 1)
flush_logs()
local permit = ''
if not TENANTLESS then
  permit = ARGV[4]
  local expires = now + L.permit_timeout
  if expired then redis.call('ZREMRANGEBYSCORE', K_TP, '-inf', now) end
  redis.call('ZADD', K_TP, expires, permit)
  redis.call('PEXPIRE', K_TP, L.permit_timeout + 1000)
end
return remember({ OP, now, 1, permit })
