-- observe: the server's feedback as effects (engine.rs Effects): ARGV[6..9] = tenant block (wait, reason), app
-- block (wait, reason), reason 0 = none; ARGV[10..12] = minute, day, app-minute remaining, -1 = not to apply.
-- Applying the same feedback twice changes nothing more (blocks keep the later end, remaining counts raise usage to
-- a level), so a retry needs no stored result.
function OPS.observe(keys, args)
  begin(keys, args)
  local function later(current, wait, reason)
    local until_ = now + tonumber(wait)
    return tonumber(reason) ~= 0 and (current <= now or until_ > current), until_
  end
  local extend, until_ = later(T.bu, args[6], args[7])
  if extend then T.bu, T.br, T.dirty = until_, tonumber(args[7]), true end
  extend, until_ = later(A.ab, args[8], args[9])
  if extend then A.ab, A.abr, A.dirty = until_, tonumber(args[9]), true end
  add_phantoms(TM, TL.minute, L.minute_window, tonumber(args[10]))
  add_phantoms(TD, TL.day, L.day_window, tonumber(args[11]))
  add_phantoms(AM, L.app_limit, L.app_window, tonumber(args[12]))
  commit()
  return { ECHO, now }
end
