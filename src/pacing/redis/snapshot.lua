-- snapshot: counts, bookings, blocks and permits, writing nothing. Returns {op, now, minute count, minute booked,
-- day count, day booked, app count, app booked, in flight, concurrency limit, minute limit, day limit, tenant block
-- until, tenant block reason, app block until, app block reason, wait, wait reason} (0 where none).
open_scope()
local at, reason = earliest(true)
local function live(block)
  if block[1] and block[1] > now then return block[1], block[2] end
  return 0, 0
end
local tb_until, tb_reason = live(tenant_block)
local ab_until, ab_reason = live(app_block)
return { OP, now,
  TM:count_at(now, L.minute_span), TM:booked_after(now),
  TD:count_at(now, L.day_span), TD:booked_after(now),
  AM:count_at(now, L.app_span), AM:booked_after(now),
  #in_flight, TL.conc, TL.minute, TL.day,
  tb_until, tb_reason, ab_until, ab_reason,
  at - now, (at > now) and reason or 0 }
