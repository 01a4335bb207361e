-- init (no prelude): KEYS[1] = the config hash. ARGV: clock ('server' or 'manual'), replace ('1' to overwrite
-- stored limits), then mm mw mg dm dw dg cc am aw ag pt. Stores the limits unless some are stored already (or
-- replace is set) and returns the stored ones: {clock, mm, mw, mg, dm, dw, dg, cc, am, aw, ag, pt}.
local fields = { 'mm', 'mw', 'mg', 'dm', 'dw', 'dg', 'cc', 'am', 'aw', 'ag', 'pt' }
local clock = redis.call('HGET', KEYS[1], 'clock')
if clock and clock ~= ARGV[1] then
  return redis.error_reply('XG_CLOCK_MISMATCH this key prefix runs on the ' .. clock .. ' clock')
end
if not clock or ARGV[2] == '1' then
  local set = { 'HSET', KEYS[1], 'clock', ARGV[1] }
  for i, f in ipairs(fields) do
    set[#set + 1] = f
    set[#set + 1] = ARGV[2 + i]
  end
  redis.call(unpack(set))
end
local stored = redis.call('HMGET', KEYS[1], 'clock', unpack(fields))
return stored
