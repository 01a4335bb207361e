-- snapshot: counts, bookings, blocks and permits, writing nothing. Returns {op, now, minute count, minute booked,
-- day count, day booked, app count, app booked, in flight, concurrency limit, minute limit, day limit, tenant block
-- until, tenant block reason, app block until, app block reason, wait, wait reason} (0 where none).
function OPS.snapshot(keys, args)
  begin(keys, args)
  local at, reason = earliest(true)
  local function live(until_, why)
    if until_ > now then return until_, why end
    return 0, 0
  end
  local tb_until, tb_reason = live(T.bu, T.br)
  local ab_until, ab_reason = live(A.ab, A.abr)
  return { ECHO, now,
    TM:count_at(now, L.minute_span), TM:booked_after(now),
    TD:count_at(now, L.day_span), TD:booked_after(now),
    AM:count_at(now, L.app_span), AM:booked_after(now),
    in_flight(), TL.conc, TL.minute, TL.day,
    tb_until, tb_reason, ab_until, ab_reason,
    at - now, (at > now) and reason or 0 }
end
