-- init: KEYS[1] = the config hash, KEYS[2] = the state hash. ARGV: clock ('server' or 'manual'), replace ('1' to
-- overwrite stored limits), then the limits as one field: minute limit, window, margin; day limit, window, margin;
-- concurrency; app-minute limit, window, margin; permit timeout, comma-separated. Stores them unless some are stored
-- already (or replace is set) and returns {clock, limits}.
function OPS.init(keys, args)
  setup()
  local clock = redis.call('HGET', keys[1], 'clock')
  if clock and clock ~= args[1] then
    return redis.error_reply('XG_CLOCK_MISMATCH this key prefix runs on the ' .. clock .. ' clock')
  end
  if not clock or args[2] == '1' then
    redis.call('HSET', keys[1], 'clock', args[1], 'lim', args[3])
    stale_config(keys[2])
  end
  return redis.call('HMGET', keys[1], 'clock', 'lim')
end

-- set_override: KEYS as init; ARGV: the tenant's config field, its limits ('minute,day,concurrency'; '' to
-- remove them), a new override generation (tenant headers cache their limits under it).
function OPS.set_override(keys, args)
  setup()
  if args[2] == '' then
    redis.call('HDEL', keys[1], args[1])
  else
    redis.call('HSET', keys[1], args[1], args[2])
  end
  redis.call('HSET', keys[1], 'ogen', args[3])
  stale_config(keys[2])
  return 1
end
