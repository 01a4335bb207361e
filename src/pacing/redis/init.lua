-- init: KEYS[1] = the config hash, KEYS[2] = the state hash. ARGV: clock ('server' or 'manual'), replace ('1' to
-- overwrite stored limits), the limits as one field (minute limit, window, margin; day limit, window, margin;
-- concurrency; app-minute limit, window, margin; permit timeout, comma-separated), a fresh id, the config's epoch
-- the caller last saw ('' at its first init), then pairs of (override field, its limits) the caller set. Stores the
-- limits unless some are stored already (or replace is set); a config it creates gets the fresh id as its epoch.
-- When the epoch is not the one the caller saw, the config was lost and made again since (a restart without
-- persistence, an eviction): the caller's overrides are stored again, unless another process set them meanwhile.
-- Returns {clock, limits, epoch}.
function OPS.init(keys, args)
  setup()
  local clock = redis.call('HGET', keys[1], 'clock')
  if clock and clock ~= args[1] then
    return redis.error_reply('XG_CLOCK_MISMATCH this key prefix runs on the ' .. clock .. ' clock')
  end
  local changed = false
  if not clock then
    redis.call('HSET', keys[1], 'clock', args[1], 'lim', args[3], 'epoch', args[4])
    changed = true
  elseif args[2] == '1' then
    redis.call('HSET', keys[1], 'lim', args[3])
    changed = true
  end
  if (redis.call('HGET', keys[1], 'epoch') or '0') ~= args[5] then
    local stored = 0
    for i = 6, #args - 1, 2 do
      -- HGET then HSET, not HSETNX: the ACL the README gives allows these.
      if not redis.call('HGET', keys[1], args[i]) then
        redis.call('HSET', keys[1], args[i], args[i + 1])
        stored = stored + 1
      end
    end
    if stored > 0 then
      redis.call('HSET', keys[1], 'ogen', args[4])
      changed = true
    end
  end
  if changed then stale_config(keys[2]) end
  local c = redis.call('HMGET', keys[1], 'clock', 'lim', 'epoch')
  c[3] = c[3] or '0'
  return c
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
