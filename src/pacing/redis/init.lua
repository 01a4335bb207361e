-- init (no prelude): KEYS[1] = the config hash. ARGV: clock ('server' or 'manual'), replace ('1' to overwrite
-- stored limits), then the limits as one field: minute limit, window, margin; day limit, window, margin;
-- concurrency; app-minute limit, window, margin; permit timeout, comma-separated. Stores them unless some are stored
-- already (or replace is set) and returns {clock, limits}.
local clock = redis.call('HGET', KEYS[1], 'clock')
if clock and clock ~= ARGV[1] then
  return redis.error_reply('XG_CLOCK_MISMATCH this key prefix runs on the ' .. clock .. ' clock')
end
if not clock or ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'clock', ARGV[1], 'lim', ARGV[3])
end
return redis.call('HMGET', KEYS[1], 'clock', 'lim')
