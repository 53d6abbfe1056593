import { createHash } from 'node:crypto';

/**
 * The decision engine's Redis Function library. Each function runs atomically on the Redis server
 * and reads its clock (TIME), never the caller's. The helpers are created once, when the library
 * is loaded, not on every call.
 *
 * Amounts are integer micro-credits. Lua numbers are doubles, exact for integers up to 2^53, so
 * every amount, product and sum stays within MAX = 2^53 − 1 (libs/contracts money.ts): products
 * (quantity × price) are checked before anything changes ('range'), and balances — sums of lots
 * that together may exceed 2^53 — are summed in two exact limbs (hi × 10^9 + lo). Numbers are
 * formatted with %d, only ever below 2^53.
 *
 * Hot state per account: ONE hash — lots, their metadata and every feature's counters (see
 * load_account). Spent lots and expired counters are pruned by the decisions that read them. No cjson on
 * the consume path: replies are flat arrays, the usage event is written as JSON by concatenation
 * of validated ids (see events.ts for its shape).
 *
 * Windows are fixed windows that open with their first granted unit and close `seconds` later:
 * one entry per window, and a window never grants more than its limit.
 */
const PRELUDE = String.raw`
local MAX = 9007199254740991
local KIND_LETTER = { promo = 'p', enterprise = 'e', adjustment = 'a', purchased = 'u' }
local KIND_NAME = { p = 'promo', e = 'enterprise', a = 'adjustment', u = 'purchased' }

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Formatting a number costs a sprintf: the small ones (units, counters) are remembered once
-- formatted (at most 4,096 strings; the string library is not reachable while a library loads).
local SMALL = {}
local function int(n)
  local s = SMALL[n]
  if s then return s end
  s = string.format('%d', n)
  if n >= 0 and n < 4096 then SMALL[n] = s end
  return s
end

-- Days since 1970-01-01 of a civil date, and back (proleptic Gregorian, H. Hinnant's algorithms).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end

-- The free tier resets at the start of each UTC calendar month.
local function next_month_ms(ms)
  local y, m = civil_from_days(math.floor(ms / 86400000))
  m = m + 1
  if m == 13 then m = 1; y = y + 1 end
  return days_from_civil(y, m, 1) * 86400000
end

-- Windows from ARGV triples (name, limit, seconds) at index 'at', and the room all of them leave.
local function load_windows(c, args, n, at)
  local wins, room = {}, nil
  for i = 1, n do
    local a = at + (i - 1) * 3
    local f = 'w' .. args[a]
    local e = c[f]
    local w = { f = f, limit = tonumber(args[a + 1]), ms = tonumber(args[a + 2]) * 1000, used = e and e.used or 0, exps = e and e.exps }
    w.room = math.max(0, w.limit - w.used)
    if room == nil or w.room < room then room = w.room end
    wins[i] = w
  end
  return wins, room or 0
end

-- An account's hot state is ONE hash (one HGETALL per call):
--   <lot id>                    → remaining micros
--   '#'<lot id>                 → 29 fixed-width characters (priority 2, expires ms 13 with
--                                 9999999999999 = never, created ms 13, kind letter 1), so that
--                                 meta .. '#' .. id sorts as text into burn-down order:
--                                 priority, soonest expiry, oldest, id
--   '~'<feature>'|w'<window>    → 'used|expires ms' of a rate window (expires: 13 digits)
--   '~'<feature>'|f'            → 'used|expires ms' of the monthly free tier (expires: 13 digits)
-- Times are compared as 13-digit text (Unix ms until the year 2286): no number parsing.
-- Returns the spendable lots (not expired, remaining > 0) as sort keys in burn-down order, the
-- remaining amounts by id (numbers for spendable lots), the exact balance as two limbs, and the live
-- counters of 'feature' ('w'<window> / 'f' → {used, exps = expiry as 13-digit text}; an entry past
-- its expiry counts as unopened), and the fields
-- of spent lots and expired counters ('gone', for prune: a hold that took from a lot carries its meta).
local function load_account(key, now, feature, nows)
  local raw = redis.call('HGETALL', key)
  local rem, keys, n, c, gone = {}, {}, 0, {}, {}
  local cp = feature and ('~' .. feature .. '|') or nil
  local cpl = cp and #cp or 0
  nows = nows or int(now)
  for i = 1, #raw, 2 do
    local f = raw[i]
    local b = string.byte(f, 1)
    if b == 35 then
      n = n + 1
      keys[n] = raw[i + 1] .. f
    elseif b == 126 then
      local v = raw[i + 1]
      local exps = string.sub(v, -13)
      if exps <= nows then
        gone[#gone + 1] = f
      elseif cp and string.sub(f, 1, cpl) == cp then
        c[string.sub(f, cpl + 1)] = { used = tonumber(string.sub(v, 1, -15)), exps = exps }
      end
    else
      rem[f] = raw[i + 1]
    end
  end
  local live, m, hi, lo = {}, 0, 0, 0
  for i = 1, n do
    local k = keys[i]
    local id = string.sub(k, 31)
    local r = tonumber(rem[id] or '0')
    if r > 0 then
      rem[id] = r
      if string.sub(k, 3, 15) > nows then
        m = m + 1
        live[m] = k
        hi = hi + math.floor(r / 1e9)
        lo = lo + r % 1e9
      end
    elseif r == 0 then
      gone[#gone + 1] = id
      gone[#gone + 1] = '#' .. id
    end
  end
  if m > 1 then table.sort(live) end
  return live, rem, hi, lo, c, gone
end

-- Removes the fields load_account found spent or expired. A write: callers prune only once
-- everything the script checks has passed (Redis keeps a failed script's writes).
local function prune(key, gone)
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
end

-- What the lots can pay, capped at MAX: exact, since any sum above MAX evaluates to >= 2^53.
local function spendable(hi, lo) return math.min(hi * 1e9 + lo, MAX) end

-- (hi * 10^9 + lo) - minus as two limbs (0 <= lo < 10^9), for 0 <= minus <= the balance.
local function limbs_after(hi, lo, minus)
  hi = hi - math.floor(minus / 1e9)
  lo = lo - minus % 1e9
  hi = hi + math.floor(lo / 1e9)
  return hi, lo % 1e9
end

-- The exact decimal of two limbs.
local function decimal(hi, lo)
  if hi > 0 then return string.format('%d%09d', hi, lo) end
  return int(lo)
end

-- The exact decimal of (hi * 10^9 + lo) - minus, for 0 <= minus <= the balance.
local function balance_after(hi, lo, minus)
  return decimal(limbs_after(hi, lo, minus))
end

-- Units a run of debits pays for: a unit belongs to the lot where its price is completed.
local function attribute_units(debits, price)
  local cum = 0
  for _, d in ipairs(debits) do
    d.units = math.floor((cum + d.micros) / price) - math.floor(cum / price)
    cum = cum + d.micros
  end
end

-- A lot's handle in a compact record: 48 bits of SHA-1 of its id (decode_record resolves it).
-- Remembered per lot id (a pure function of it; at most 4,096 ids, then forgotten all at once).
local HANDLES, handles_n = {}, 0
local function lot_handle(id)
  local h = HANDLES[id]
  if h then return h end
  h = tonumber(string.sub(redis.sha1hex(id), 1, 12), 16)
  if handles_n >= 4096 then HANDLES, handles_n = {}, 0 end
  HANDLES[id] = h
  handles_n = handles_n + 1
  return h
end

-- The compact idempotency record (a listpack value of at most 64 bytes; see the decide function):
--   fingerprint 8 | decision uuid 16 | struct '>I6I4I4B': at ms, balance limbs hi and lo, flags
--   (bit 0 allow_partial, bit 1 a hold, bits 2+ the number of debits n) | n lot handles (I6) |
--   text 'r f c requested[ hold ttl s] micros_1 … micros_n' (decimal, space separated).
-- Each debit's units follow from its micros and the price (charged / c), as attribute_units did.
-- Returns the record's text form (what a new decision replies, engine.ts decisionFromReply); a
-- debit whose lot is no longer in the account hash (spent and pruned) is '?<12 hex handle> …',
-- which the engine resolves against the ledger.
local function decode_record(v, lots_key)
  local u1, u2, u3, u4, at, hi, lo, flags, pos = struct.unpack('>I4I4I4I4I6I4I4B', v, 9)
  local n = math.floor(flags / 4)
  local debits = {}
  for i = 1, n do
    local h
    h, pos = struct.unpack('>I6', v, pos)
    debits[i] = { h = string.format('%012x', h) }
  end
  local t = {}
  for x in string.gmatch(string.sub(v, pos), '%d+') do t[#t + 1] = x end
  local k, hold = 5, '0'
  if flags % 4 >= 2 then hold = int(at + tonumber(t[5]) * 1000); k = 6 end
  local cost = 0
  for i, d in ipairs(debits) do
    d.micros = tonumber(t[k + i - 1])
    cost = cost + d.micros
  end
  local ds = {}
  if n > 0 then
    attribute_units(debits, cost / tonumber(t[3]))
    local want = {}
    for _, d in ipairs(debits) do want[d.h] = d end
    local raw = redis.call('HGETALL', lots_key)
    for i = 1, #raw, 2 do
      local f = raw[i]
      if string.byte(f, 1) == 35 then
        local d = want[string.sub(redis.sha1hex(string.sub(f, 2)), 1, 12)]
        if d then d.lot = string.sub(raw[i + 1], 29, 29) .. string.sub(f, 2) end
      end
    end
    for i, d in ipairs(debits) do ds[i] = (d.lot or ('?' .. d.h)) .. ' ' .. int(d.units) .. ' ' .. int(d.micros) end
  end
  return table.concat({ string.format('%08x%08x%08x%08x', u1, u2, u3, u4), int(at), hold, t[1], t[2], int(cost), decimal(hi, lo),
    table.concat(ds, ','), t[4], flags % 2 == 1 and '1' or '0' }, '|')
end

-- Looks a record up (a bucket also holds one marker field '', see decide): the bucket of this generation (keys[a]), of the previous one (keys[a + 1]),
-- then the record's own string key (keys[1]) when the bucket holds a stub ('': the record was too
-- long for a listpack value; stored as fingerprint 8 bytes .. text form) or, while 'legacy' is
-- on, when neither bucket has it (the previous release's key: 'fingerprint text|text form', or
-- this release's own key whose stub was forgotten).
-- Returns the stored value and its form: 'c' compact, 'o' own key, 'l' previous release.
local function find_record(keys, a, field, legacy)
  local v = redis.call('HGET', keys[a], field) or redis.call('HGET', keys[a + 1], field)
  if v == '' then return redis.call('GET', keys[1]), 'o' end
  if not v and legacy then
    -- The own key may hold this release's form (its bucket stub forgotten when the bucket count or
    -- retention changed): the previous release's starts with an 11-character fingerprint and '|',
    -- this release's with 8 fingerprint bytes and the decision's hex uuid (no '|' at byte 12).
    local own = redis.call('GET', keys[1])
    if own and string.byte(own, 12) ~= 124 then return own, 'o' end
    return own, 'l'
  end
  return v, 'c'
end

-- The waterfall: rate windows, then free tier, then credits. Chooses only; applies nothing.
-- Callers check q * price <= MAX first, so every product here is exact; floor(x / y) is exact for
-- integers 0 <= x, y <= MAX (a quotient within half an ulp of an integer k would need k * y > 2^53).
local function choose(q, rate_room, ft_room, live, rem, balance, price, overage)
  local p = { r = 0, f = 0, c = 0, debits = {} }
  local need = q
  p.r = math.min(need, rate_room); need = need - p.r
  p.f = math.min(need, ft_room); need = need - p.f
  if need > 0 and overage == 'credits' and price > 0 then
    p.c = math.min(need, math.floor(balance / price)); need = need - p.c
    local owed = p.c * price
    for _, k in ipairs(live) do
      if owed == 0 then break end
      local id = string.sub(k, 31)
      local d = math.min(tonumber(rem[id]), owed)
      owed = owed - d
      p.debits[#p.debits + 1] = { id = id, kind = KIND_NAME[string.sub(k, 29, 29)], micros = d, meta = string.sub(k, 1, 29) }
    end
    assert(owed == 0, 'waterfall: credits chosen exceed the balance')
    attribute_units(p.debits, price)
  end
  p.granted = q - need
  return p
end

-- Applies a plan in ONE HSET: the feature's counters (prefix cp) and the new remaining amount of
-- each lot debited (from 'rem', read in this same call). Checks everything, then prunes 'gone'
-- (before the HSET: a counter rewritten here may be one that had expired), then writes.
local function apply(p, wins, ft, cp, key, rem, now, gone)
  local hs = {}
  if p.r > 0 then
    for _, w in ipairs(wins) do
      assert(w.used + p.r <= w.limit, 'window over its limit')
      w.exps = w.exps or int(now + w.ms)
      w.used = w.used + p.r
      hs[#hs + 1] = cp .. w.f
      hs[#hs + 1] = int(w.used) .. '|' .. w.exps
    end
  end
  if p.f > 0 then
    ft.exps = ft.exps or int(next_month_ms(now))
    ft.used = ft.used + p.f
    hs[#hs + 1] = cp .. 'f'
    hs[#hs + 1] = int(ft.used) .. '|' .. ft.exps
  end
  for _, d in ipairs(p.debits) do
    local left = tonumber(rem[d.id]) - d.micros
    assert(left >= 0, 'lot below zero')
    rem[d.id] = int(left)
    hs[#hs + 1] = d.id
    hs[#hs + 1] = rem[d.id]
  end
  prune(key, gone)
  if #hs > 0 then redis.call('HSET', key, unpack(hs)) end
end

local function charged(p)
  local c = 0
  for _, d in ipairs(p.debits) do c = c + d.micros end
  return c
end

-- The usage event's sources as JSON (ids are validated to [A-Za-z0-9._:@-] by the engine).
local function sources_json(p)
  local s = { '[{"layer":"rate_limit","units":', int(p.r), '},{"layer":"free_tier","units":', int(p.f), '}' }
  for _, d in ipairs(p.debits) do
    s[#s + 1] = ',{"layer":"' .. d.kind .. '","lot_id":"' .. d.id .. '","units":' .. int(d.units) .. ',"micros":"' .. (d.ms or int(d.micros)) .. '"}'
  end
  s[#s + 1] = ']'
  return table.concat(s)
end

-- A usage event (events.ts UsageStreamEvent), built without cjson. costs and nows: the charge and
-- the time, already formatted.
local function usage_json(did, account, feature, key, quantity, p, costs, balance, nows, wo_units, wo)
  return table.concat({ '{"decision_id":"', did, '","account":"', account, '","feature":"', feature, '","key":"', key,
    '","quantity":', int(quantity), ',"sources":', sources_json(p), ',"charged":"', costs, '","balance":"', balance,
    '","at":', nows, ',"written_off_units":', int(wo_units), ',"written_off":"', int(wo), '"}' })
end

-- Current window state for the reply: (remaining, reset ms) per window (reset as a number or as text).
local function window_reply(out, wins, taken, now)
  for _, w in ipairs(wins) do
    out[#out + 1] = math.max(0, w.room - taken)
    out[#out + 1] = w.exps or now + w.ms
  end
  return out
end

-- Gives 'n' units of a plan back: credits first (last lot debited first), then free tier, then
-- windows; counters are only decremented while they still belong to the window that was charged.
-- Redis does not roll a script back when it errors, so everything is computed and checked first
-- and written after: an error here leaves the hold and the lots untouched (a retry cannot give
-- credits back twice).
local function give_back(p, n, price, lots_key, cp)
  local back_c = math.min(n, p.c)
  -- back_c <= p.c and p.c * price <= MAX (checked when the hold was made): exact.
  local micros = back_c * price
  local incr = {}
  for i = #p.debits, 1, -1 do
    if micros == 0 then break end
    local d = p.debits[i]
    local b = math.min(d.micros, micros)
    incr[#incr + 1] = { d = d, b = b }
    micros = micros - b
  end
  assert(micros == 0, 'give back: more credits than were debited')
  n = n - back_c
  local back_f = math.min(n, p.f)
  n = n - back_f
  local back_r = math.min(n, p.r)
  local hs = {}
  if back_f > 0 or back_r > 0 then
    local function dec(f, exp, units)
      if units == 0 or not exp or exp == 0 then return end
      local v = redis.call('HGET', lots_key, cp .. f)
      local used, e = string.match(v or '', '^(%d+)|(%d+)$')
      if e and tonumber(e) == exp then
        hs[#hs + 1] = cp .. f
        hs[#hs + 1] = int(math.max(0, tonumber(used) - units)) .. '|' .. e
      end
    end
    dec('f', p.fexp, back_f)
    for f, exp in pairs(p.wexp or {}) do dec(f, exp, back_r) end
  end
  -- Checked: now write.
  for _, x in ipairs(incr) do
    -- The lot may have been pruned when spent: it comes back with its meta.
    if x.d.meta then redis.call('HSETNX', lots_key, '#' .. x.d.id, x.d.meta) end
    redis.call('HINCRBY', lots_key, x.d.id, int(x.b))
    x.d.micros = x.d.micros - x.b
  end
  if #hs > 0 then redis.call('HSET', lots_key, unpack(hs)) end
  local kept = {}
  for _, d in ipairs(p.debits) do if d.micros > 0 then kept[#kept + 1] = d end end
  p.debits = kept
  p.c = p.c - back_c
  if price > 0 then attribute_units(p.debits, price) end
  p.f = p.f - back_f
  p.r = p.r - back_r
  p.granted = p.r + p.f + p.c
end

`;
/**
 * decide: KEYS own record key, account hash, stream, hold, record bucket of this generation, of the previous one
 * ARGV account, feature, quantity, idempotency key, fingerprint as text while the previous release's
 *      keys are read (else ''), mode, allow_partial, decision id, price, overage, free units, hold ttl s,
 *      record expiry (Unix s: end of the next generation), n windows, record head (fingerprint 8 bytes,
 *      decision uuid 16 bytes), record field (10 bytes), (name, limit, seconds)...
 * Returns {'ok'|'replay', record, now, (remaining, reset ms) per window} | {'conflict'} | {'range'}.
 * The record (engine.ts decisionFromReply) is the text form of what the idempotency key keeps:
 * enough to rebuild the response; windows, Retry-After and RateLimit-Reset are always read now.
 * Stored compact (decode_record) in the bucket hash; a record longer than 64 bytes (the default
 * hash-max-listpack-value: a longer value would turn the whole bucket into a hashtable) goes to its
 * own string key (binary fingerprint .. text form), with a stub ('') in the bucket.
 */
const DECIDE = String.raw`
local mode, nw, free_units = ARGV[6], tonumber(ARGV[14]), tonumber(ARGV[11])
local stored, form = nil, nil
if mode ~= 'preview' then stored, form = find_record(KEYS, 5, ARGV[16], ARGV[5] ~= '') end
if stored then
  local record
  if form == 'l' then
    local sep = string.find(stored, '|', 1, true)
    if string.sub(stored, 1, sep - 1) ~= ARGV[5] then return { 'conflict' } end
    record = string.sub(stored, sep + 1)
  else
    if string.sub(stored, 1, 8) ~= string.sub(ARGV[15], 1, 8) then return { 'conflict' } end
    record = form == 'o' and string.sub(stored, 9) or decode_record(stored, KEYS[2])
  end
  local now = now_ms()
  local c = {}
  if nw > 0 then
    -- Only this feature's windows: one HMGET, nothing else read.
    local fields = {}
    for i = 1, nw do fields[i] = '~' .. ARGV[2] .. '|w' .. ARGV[17 + (i - 1) * 3] end
    local values = redis.call('HMGET', KEYS[2], unpack(fields))
    local nows = int(now)
    for i = 1, nw do
      local v = values[i]
      if v and string.sub(v, -13) > nows then c[string.sub(fields[i], #ARGV[2] + 3)] = { used = tonumber(string.sub(v, 1, -15)), exps = string.sub(v, -13) } end
    end
  end
  return window_reply({ 'replay', record, now }, load_windows(c, ARGV, nw, 17), 0, now)
end
local now = now_ms()
local nows = int(now)
local q, price, overage = tonumber(ARGV[3]), tonumber(ARGV[9]), ARGV[10]
if q * price > MAX then return { 'range' } end
local live, rem, hi, lo, c, gone = load_account(KEYS[2], now, ARGV[2], nows)
local wins, rate_room = load_windows(c, ARGV, nw, 17)
local ft = c.f or { used = 0 }
local ft_room = math.max(0, free_units - ft.used)
local p = choose(q, rate_room, ft_room, live, rem, spendable(hi, lo), price, overage)
if ARGV[7] ~= '1' and p.granted < q then p = { r = 0, f = 0, c = 0, debits = {}, granted = 0 } end
local applies = mode ~= 'preview' and p.granted > 0
if applies then apply(p, wins, ft, '~' .. ARGV[2] .. '|', KEYS[2], rem, now, gone) elseif mode ~= 'preview' then prune(KEYS[2], gone) end
local cost = charged(p)
local bhi, blo = limbs_after(hi, lo, cost)
local balance = decimal(bhi, blo)
-- Each amount is formatted once, for the usage event and the record alike.
for _, x in ipairs(p.debits) do x.ms = int(x.micros) end
local costs = #p.debits == 1 and p.debits[1].ms or int(cost)
local did = ARGV[8]
local hold_exp = 0
if mode == 'reserve' and p.granted > 0 then
  local ttl = tonumber(ARGV[12]) * 1000
  hold_exp = now + ttl
  -- cjson writes numbers with 14 significant digits: amounts and times go in as %d strings.
  local wexp, debits = {}, {}
  if p.r > 0 then for _, w in ipairs(wins) do wexp[w.f] = w.exps end end
  for i, x in ipairs(p.debits) do debits[i] = { id = x.id, kind = x.kind, micros = x.ms, units = x.units, meta = x.meta } end
  local plan = { r = p.r, f = p.f, c = p.c, debits = debits, wexp = wexp, fexp = p.f > 0 and ft.exps or '0' }
  redis.call('HSET', KEYS[4], 'decision_id', did, 'account', ARGV[1], 'feature', ARGV[2], 'q', int(p.granted), 'state', 'held', 'price', ARGV[9],
    'expires', int(hold_exp), 'plan', cjson.encode(plan), 'key', ARGV[4])
  redis.call('PEXPIRE', KEYS[4], int(ttl + 86400000))
  redis.call('XADD', KEYS[3], '*', 'hold', '{"decision_id":"' .. did .. '","account":"' .. ARGV[1] .. '","expires_at":' .. int(hold_exp) .. '}')
end
if applies and mode == 'consume' then
  redis.call('XADD', KEYS[3], '*', 'usage', usage_json(did, ARGV[1], ARGV[2], ARGV[4], p.granted, p, costs, balance, nows, 0, 0))
end
local d = {}
for i, x in ipairs(p.debits) do d[i] = KIND_LETTER[x.kind] .. x.id .. ' ' .. int(x.units) .. ' ' .. x.ms end
-- The requested quantity and allow_partial close the record so a decision can be explained later (GET /v1/decisions/{id}).
local record = table.concat({ string.sub(did, -32), nows, int(hold_exp), int(p.r), int(p.f), costs, balance, table.concat(d, ','), ARGV[3], ARGV[7] }, '|')
if mode ~= 'preview' then
  local n = #p.debits
  local flags = (ARGV[7] == '1' and 1 or 0) + (hold_exp > 0 and 2 or 0) + 4 * n
  local tail = int(p.r) .. ' ' .. int(p.f) .. ' ' .. int(p.c) .. ' ' .. ARGV[3]
  if hold_exp > 0 then tail = tail .. ' ' .. ARGV[12] end
  local v
  if n == 1 then
    -- The usual record, without tables: one pack, one concatenation.
    local x = p.debits[1]
    v = ARGV[15] .. struct.pack('>I6I4I4BI6', now, bhi, blo, flags, lot_handle(x.id)) .. tail .. ' ' .. x.ms
  else
    local hs, ms = '', ''
    for _, x in ipairs(p.debits) do
      hs = hs .. struct.pack('>I6', lot_handle(x.id))
      ms = ms .. ' ' .. x.ms
    end
    v = ARGV[15] .. struct.pack('>I6I4I4B', now, bhi, blo, flags) .. hs .. tail .. ms
  end
  if #v > 64 then
    redis.call('SET', KEYS[1], string.sub(ARGV[15], 1, 8) .. record, 'EXAT', ARGV[13])
    v = ''
  end
  -- The bucket's marker field '' (never a record's: those are 10 bytes) is new only in a new
  -- bucket: its expiry is set then, and not on every write.
  if redis.call('HSET', KEYS[5], ARGV[16], v, '', '') == 2 then redis.call('EXPIREAT', KEYS[5], ARGV[13]) end
end
return window_reply({ 'ok', record, now }, wins, p.r, now)
`;

/**
 * record: the idempotency record of a key, read-only (GET /v1/decisions/{id}). KEYS own record key,
 * account hash, record bucket of this generation, of the previous one. ARGV record field, legacy.
 * Returns the record's text form ('fingerprint|record', the fingerprint '-' for a compact record;
 * see decide) or false when there is none.
 */
const RECORD = String.raw`
local stored, form = find_record(KEYS, 3, ARGV[1], ARGV[2] == '1')
if not stored or form == 'l' then return stored end
return '-|' .. (form == 'o' and string.sub(stored, 9) or decode_record(stored, KEYS[2]))
`;

/**
 * settle a hold — commit (at an actual quantity) or release (quantity 0, no usage). The hold keeps
 * the price it was reserved at; the policy (overage, free tier, windows) applies to extra units.
 * KEYS hold, account hash, stream.
 * ARGV account, feature, action, actual quantity, overage, free units, n windows, (name, limit, seconds)...
 * Returns {'ok'|'replay', json} | {'not_found'} | {'conflict', state, quantity} | {'expired'} | {'range'}.
 * A commit of an expired hold is 'expired' whether or not the expiry timer has released it yet.
 */
const SETTLE_HOLD = String.raw`
local h = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
if h.state == nil or h.account ~= ARGV[1] then return { 'not_found' } end
local action, A = ARGV[3], tonumber(ARGV[4])
if h.state ~= 'held' then
  if h.state == 'expired' and action == 'committed' then return { 'expired' } end
  if action == 'released' and h.state ~= 'committed' then return { 'replay', h.result } end
  if h.state == 'committed' and h.cq == ARGV[4] then return { 'replay', h.result } end
  return { 'conflict', h.state, h.cq or '' }
end
local now = now_ms()
local price, overage, free_units = tonumber(h.price), ARGV[5], tonumber(ARGV[6])
if A * price > MAX then return { 'range' } end
local p = cjson.decode(h.plan)
for _, d in ipairs(p.debits) do d.micros = tonumber(d.micros) end
for f, exp in pairs(p.wexp) do p.wexp[f] = tonumber(exp) end
p.fexp = tonumber(p.fexp)
local H = tonumber(h.q)
p.granted = H
local expired = now >= tonumber(h.expires)
if expired or action == 'released' then
  give_back(p, H, price, KEYS[2], '~' .. h.feature .. '|')
  local state = expired and 'expired' or 'released'
  local result = '{"decision_id":"' .. h.decision_id .. '","state":"' .. state .. '","released_units":' .. int(H) .. ',"at":' .. int(now) .. '}'
  redis.call('HSET', KEYS[1], 'state', state, 'result', result)
  if expired and action ~= 'released' then return { 'expired' } end
  return { 'ok', result }
end
local written_off_units = 0
if A <= H then
  give_back(p, H - A, price, KEYS[2], '~' .. h.feature .. '|')
else
  local live, rem, hi, lo, c, gone = load_account(KEYS[2], now, h.feature)
  local wins, rate_room = load_windows(c, ARGV, tonumber(ARGV[7]), 8)
  local ft = c.f or { used = 0 }
  local ft_room = math.max(0, free_units - ft.used)
  local extra = choose(A - H, rate_room, ft_room, live, rem, spendable(hi, lo), price, overage)
  apply(extra, wins, ft, '~' .. h.feature .. '|', KEYS[2], rem, now, gone)
  written_off_units = (A - H) - extra.granted
  p.r, p.f, p.c = p.r + extra.r, p.f + extra.f, p.c + extra.c
  for _, d in ipairs(extra.debits) do
    local merged = false
    for _, e in ipairs(p.debits) do
      if e.id == d.id then e.micros = e.micros + d.micros; merged = true; break end
    end
    if not merged then p.debits[#p.debits + 1] = d end
  end
  if price > 0 then attribute_units(p.debits, price) end
end
local _, _, hi, lo = load_account(KEYS[2], now)
local cost = charged(p)
local balance = balance_after(hi, lo, 0)
local event = usage_json(h.decision_id, ARGV[1], h.feature, h.key, A, p, int(cost), balance, int(now), written_off_units, written_off_units * price)
if A > 0 then redis.call('XADD', KEYS[3], '*', 'usage', event) end
redis.call('HSET', KEYS[1], 'state', 'committed', 'cq', ARGV[4], 'result', event)
return { 'ok', event }
`;

/**
 * grant: credits a lot in Redis exactly once (the ledger has it already). The grant marker
 * remembers the lot after it was spent and pruned, so a retried grant never credits it twice.
 * KEYS lots, grant marker. ARGV lot id, meta (see load_account), micros,
 * max lots per account, marker ttl s.
 * Returns 1 when applied now, 0 when it had been applied before, -1 when the account already
 * holds the maximum number of lots (nothing changed).
 */
const GRANT = String.raw`
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('HEXISTS', KEYS[1], '#' .. ARGV[1]) == 1 then return 0 end
local cap = tonumber(ARGV[4])
if redis.call('HLEN', KEYS[1]) >= 2 * cap then
  -- Count lots only (a lot is two fields, counters one each), after pruning spent lots.
  prune(KEYS[1], select(6, load_account(KEYS[1], now_ms())))
  local lots = 0
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do if string.byte(f, 1) == 35 then lots = lots + 1 end end
  if lots >= cap then return -1 end
end
redis.call('HSET', KEYS[1], '#' .. ARGV[1], ARGV[2], ARGV[1], ARGV[3])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[5])
return 1
`;

/**
 * snapshot: a consistent read for the account view. KEYS account hash.
 * Returns {now ms, the account hash flat}.
 */
const SNAPSHOT = String.raw`
return { now_ms(), redis.call('HGETALL', KEYS[1]) }
`;

/**
 * restore: brings back lots Redis does not hold, at the ledger's remaining amounts (after a data
 * loss). A lot Redis holds is live and may have unsettled debits: it is never overwritten. A lot
 * whose grant marker Redis still holds was spent and pruned, not lost: it stays gone (the ledger
 * may not have settled its last debits yet).
 * KEYS lots, then each lot's grant marker. ARGV (lot id, meta, remaining micros)... Returns how
 * many were restored.
 */
const RESTORE = String.raw`
local restored = 0
for i = 1, #ARGV, 3 do
  local marker = KEYS[2 + (i - 1) / 3]
  if redis.call('EXISTS', marker) == 0 and redis.call('HSETNX', KEYS[1], '#' .. ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    restored = restored + 1
  end
end
return restored
`;

/**
 * expire_lot: takes a lot's whole remainder at once and removes the lot, so expiry removes
 * exactly what is left (I7). The amount is remembered (marker), so a retried expiry reports the
 * same amount and removes nothing more. KEYS lots, expiry marker. ARGV lot id, marker ttl s.
 * Returns the micros removed (as a string).
 */
const EXPIRE_LOT = String.raw`
local done = redis.call('GET', KEYS[2])
if done then return done end
local left = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
redis.call('HDEL', KEYS[1], ARGV[1], '#' .. ARGV[1])
redis.call('SET', KEYS[2], left, 'EX', ARGV[2])
return left
`;

/**
 * debit: takes credits from the lots in burn-down order (a negative adjustment), never below zero.
 * Once per key: a retry returns the first answer (marker). KEYS lots, debit marker.
 * ARGV micros, marker ttl s. Returns 'lot:micros,...' for what was taken (less than asked when
 * the balance is short).
 */
const DEBIT = String.raw`
local done = redis.call('GET', KEYS[2])
if done then return done end
local live, rem, hi, lo, _, gone = load_account(KEYS[1], now_ms())
prune(KEYS[1], gone)
local owed = math.min(tonumber(ARGV[1]), spendable(hi, lo))
local taken = {}
for _, k in ipairs(live) do
  if owed == 0 then break end
  local id = string.sub(k, 31)
  local d = math.min(tonumber(rem[id]), owed)
  redis.call('HINCRBY', KEYS[1], id, int(-d))
  owed = owed - d
  taken[#taken + 1] = id .. ':' .. int(d)
end
local result = table.concat(taken, ',')
redis.call('SET', KEYS[2], result, 'EX', ARGV[2])
return result
`;

const FUNCTIONS = {
  decide: DECIDE,
  record: RECORD,
  debit: DEBIT,
  settle_hold: SETTLE_HOLD,
  grant: GRANT,
  snapshot: SNAPSHOT,
  restore: RESTORE,
  expire_lot: EXPIRE_LOT,
};
export type EngineFunction = keyof typeof FUNCTIONS;

/** The library's version is the hash of its code, so two releases never replace each other's. */
export const LIBRARY_VERSION = createHash('sha1')
  .update(PRELUDE + Object.values(FUNCTIONS).join(''))
  .digest('hex')
  .slice(0, 12);

export const functionName = (name: EngineFunction) => `sw_${name}_${LIBRARY_VERSION}`;

export const LIBRARY_SOURCE = [
  `#!lua name=spillway_${LIBRARY_VERSION}`,
  PRELUDE,
  ...Object.entries(FUNCTIONS).map(
    ([name, body]) => `redis.register_function('${functionName(name as EngineFunction)}', function(KEYS, ARGV)\n${body}\nend)`,
  ),
].join('\n');
