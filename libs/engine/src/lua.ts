import { createHash } from 'node:crypto';

/**
 * The decision engine's Redis Function library. Each function runs atomically on the Redis server
 * and reads its clock (TIME), never the caller's. The helpers are created once, when the library
 * is loaded, not on every call. Amounts are integer micro-credits; Lua numbers are doubles, so
 * every amount stays below 2^53 (enforced by the callers) and is formatted with %d, never %g.
 *
 * Windows are fixed windows that open with their first granted unit and close `seconds` later
 * (the key's TTL): one integer per window, and a window never grants more than its limit.
 */
const PRELUDE = String.raw`
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(n) return string.format('%d', n) end

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

-- Windows from args triples (name, limit, seconds) at index 'at', their keys from key index 'kat'.
-- pttl < 0: the window has not opened yet (it opens with its first granted unit).
local function load_windows(keys, args, n, at, kat)
  local wins, room = {}, nil
  for i = 1, n do
    local a = at + (i - 1) * 3
    local w = { name = args[a], limit = tonumber(args[a + 1]), ms = tonumber(args[a + 2]) * 1000, key = keys[kat + i - 1], pttl = -2 }
    local used = redis.call('GET', w.key)
    w.used = tonumber(used or '0')
    if used then w.pttl = redis.call('PTTL', w.key) end
    w.room = math.max(0, w.limit - w.used)
    if room == nil or w.room < room then room = w.room end
    wins[i] = w
  end
  return wins, room or 0
end

-- Spendable lots (not expired, remaining > 0) in burn-down order: priority, soonest expiry, oldest.
local function load_lots(lots_key, meta_key, now)
  local meta = {}
  local raw = redis.call('HGETALL', meta_key)
  for i = 1, #raw, 2 do meta[raw[i]] = raw[i + 1] end
  local rem = redis.call('HGETALL', lots_key)
  local lots, balance = {}, 0
  for i = 1, #rem, 2 do
    local m, r = meta[rem[i]], tonumber(rem[i + 1])
    if m and r > 0 then
      local kind, prio, exp, seq = string.match(m, '^(%a+)|(%d+)|(%d+)|(%d+)$')
      exp = tonumber(exp)
      if exp == 0 or exp > now then
        lots[#lots + 1] = { id = rem[i], rem = r, kind = kind, prio = tonumber(prio), exp = exp, seq = tonumber(seq) }
        balance = balance + r
      end
    end
  end
  table.sort(lots, function(a, b)
    if a.prio ~= b.prio then return a.prio < b.prio end
    local ae = a.exp == 0 and math.huge or a.exp
    local be = b.exp == 0 and math.huge or b.exp
    if ae ~= be then return ae < be end
    if a.seq ~= b.seq then return a.seq < b.seq end
    return a.id < b.id
  end)
  return lots, balance
end

-- Units a run of debits pays for: a unit belongs to the lot where its price is completed.
local function attribute_units(debits, price)
  local cum = 0
  for _, d in ipairs(debits) do
    d.units = math.floor((cum + d.micros) / price) - math.floor(cum / price)
    cum = cum + d.micros
  end
end

-- The waterfall: rate windows, then free tier, then credits. Chooses only; applies nothing.
local function choose(q, rate_room, ft_room, lots, balance, price, overage)
  local p = { r = 0, f = 0, c = 0, debits = {} }
  local need = q
  p.r = math.min(need, rate_room); need = need - p.r
  p.f = math.min(need, ft_room); need = need - p.f
  if need > 0 and overage == 'credits' and price > 0 then
    p.c = math.min(need, math.floor(balance / price)); need = need - p.c
    local owed = p.c * price
    for _, lot in ipairs(lots) do
      if owed == 0 then break end
      local d = math.min(lot.rem, owed)
      if d > 0 then
        owed = owed - d
        p.debits[#p.debits + 1] = { id = lot.id, kind = lot.kind, micros = d }
      end
    end
    assert(owed == 0, 'waterfall: credits chosen exceed the balance')
    attribute_units(p.debits, price)
  end
  p.granted = q - need
  return p
end

local function apply(p, wins, ft_key, lots_key, now)
  if p.r > 0 then
    for _, w in ipairs(wins) do
      assert(w.used + p.r <= w.limit, 'window over its limit')
      redis.call('INCRBY', w.key, int(p.r))
      if w.pttl < 0 then
        redis.call('PEXPIRE', w.key, int(w.ms))
        w.pttl = w.ms
      end
    end
  end
  if p.f > 0 then
    redis.call('INCRBY', ft_key, int(p.f))
    if redis.call('PTTL', ft_key) < 0 then redis.call('PEXPIREAT', ft_key, int(next_month_ms(now))) end
  end
  for _, d in ipairs(p.debits) do
    redis.call('HINCRBY', lots_key, d.id, int(-d.micros))
  end
end

local function charged(p)
  local c = 0
  for _, d in ipairs(p.debits) do c = c + d.micros end
  return c
end

local function sources(p)
  local s = { { layer = 'rate_limit', units = p.r }, { layer = 'free_tier', units = p.f } }
  for _, d in ipairs(p.debits) do
    s[#s + 1] = { layer = d.kind, lot_id = d.id, units = d.units, micros = int(d.micros) }
  end
  return s
end

-- Turns the loaded windows into their report in place (no new tables on the hot path).
local function report_windows(wins, taken, now)
  for _, w in ipairs(wins) do
    w.reset_at = w.pttl > 0 and now + w.pttl or now + w.ms
    w.remaining = math.max(0, w.room - taken)
    w.key, w.ms, w.used, w.pttl, w.room = nil, nil, nil, nil, nil
  end
  return wins
end

-- Seconds until every exhausted window has room again; -1 when waiting would not help.
local function retry_after(windows, now)
  local wait = -1
  for _, w in ipairs(windows) do
    if w.remaining == 0 then wait = math.max(wait, math.ceil((w.reset_at - now) / 1000)) end
  end
  return wait
end

-- Gives 'n' units of a plan back: credits first (last lot debited first), then free tier, then
-- windows; counters are only decremented while they still belong to the window that was charged.
local function give_back(p, n, price, lots_key, ft_key, win_keys)
  local back_c = math.min(n, p.c)
  local micros = back_c * price
  for i = #p.debits, 1, -1 do
    if micros == 0 then break end
    local d = p.debits[i]
    local b = math.min(d.micros, micros)
    redis.call('HINCRBY', lots_key, d.id, int(b))
    d.micros = d.micros - b
    micros = micros - b
  end
  assert(micros == 0, 'give back: more credits than were debited')
  local kept = {}
  for _, d in ipairs(p.debits) do if d.micros > 0 then kept[#kept + 1] = d end end
  p.debits = kept
  p.c = p.c - back_c
  if price > 0 then attribute_units(p.debits, price) end
  n = n - back_c
  local back_f = math.min(n, p.f)
  if back_f > 0 and p.fexp > 0 and redis.call('PEXPIRETIME', ft_key) == p.fexp then
    redis.call('DECRBY', ft_key, int(back_f))
  end
  p.f = p.f - back_f
  n = n - back_f
  local back_r = math.min(n, p.r)
  if back_r > 0 then
    for _, key in ipairs(win_keys) do
      if (p.wexp[key] or 0) > 0 and redis.call('PEXPIRETIME', key) == p.wexp[key] then redis.call('DECRBY', key, int(back_r)) end
    end
  end
  p.r = p.r - back_r
  p.granted = p.r + p.f + p.c
end

`;

/**
 * decide: KEYS idem, lots, lotmeta, freetier, stream, hold, window...
 * ARGV account, feature, quantity, idem key, fingerprint, mode, allow_partial, decision id, price,
 *      overage, free units, hold ttl s, idem ttl s, policy version, n windows, (name, limit, seconds)...
 * Returns {'ok'|'replay', json} | {'conflict'}.
 */
const DECIDE = String.raw`
local mode = ARGV[6]
if mode ~= 'preview' then
  local stored = redis.call('GET', KEYS[1])
  if stored then
    local sep = string.find(stored, '\n', 1, true)
    if string.sub(stored, 1, sep - 1) ~= ARGV[5] then return { 'conflict' } end
    return { 'replay', string.sub(stored, sep + 1) }
  end
end
local now = now_ms()
local q, price, overage, free_units = tonumber(ARGV[3]), tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[11])
local wins, rate_room = load_windows(KEYS, ARGV, tonumber(ARGV[15]), 16, 7)
local ft_room = 0
if free_units > 0 then ft_room = math.max(0, free_units - tonumber(redis.call('GET', KEYS[4]) or '0')) end
local lots, balance = load_lots(KEYS[2], KEYS[3], now)
local p = choose(q, rate_room, ft_room, lots, balance, price, overage)
if ARGV[7] ~= '1' and p.granted < q then p = { r = 0, f = 0, c = 0, debits = {}, granted = 0 } end
local outcome = p.granted == q and 'allowed' or (p.granted == 0 and 'denied' or 'partial')
local applies = mode ~= 'preview' and p.granted > 0
if applies then apply(p, wins, KEYS[4], KEYS[2], now) end
local cost = charged(p)
local wexp = {}
if mode == 'reserve' and p.granted > 0 then
  for _, w in ipairs(wins) do wexp[w.key] = redis.call('PEXPIRETIME', w.key) end
end
local windows = report_windows(wins, p.r, now)
-- One document is the response, the idempotent record and (for consume) the usage event.
local result = {
  decision_id = ARGV[8], account = ARGV[1], feature = ARGV[2], key = ARGV[4], outcome = outcome,
  quantity = p.granted, granted = p.granted, denied = q - p.granted, sources = sources(p), charged = int(cost),
  balance = int(balance - cost), windows = windows, retry_after = p.granted < q and retry_after(windows, now) or -1,
  mode = mode, at = now, policy_version = tonumber(ARGV[14]), written_off_units = 0, written_off = '0',
}
if mode == 'reserve' and p.granted > 0 then
  local ttl = tonumber(ARGV[12]) * 1000
  result.hold_expires_at = now + ttl
  local plan = { r = p.r, f = p.f, c = p.c, debits = p.debits, wexp = wexp, fexp = redis.call('PEXPIRETIME', KEYS[4]) }
  redis.call('HSET', KEYS[6], 'decision_id', ARGV[8], 'account', ARGV[1], 'feature', ARGV[2], 'q', int(p.granted), 'state', 'held', 'price', ARGV[9],
    'expires', int(now + ttl), 'plan', cjson.encode(plan), 'key', ARGV[4])
  redis.call('PEXPIRE', KEYS[6], int(ttl + 86400000))
  redis.call('XADD', KEYS[5], '*', 'hold', cjson.encode({ decision_id = ARGV[8], account = ARGV[1], expires_at = now + ttl }))
end
local json = cjson.encode(result)
if applies and mode == 'consume' then redis.call('XADD', KEYS[5], '*', 'usage', json) end
if mode ~= 'preview' then redis.call('SET', KEYS[1], ARGV[5] .. '\n' .. json, 'EX', ARGV[13]) end
return { 'ok', json }
`;

/**
 * settle a hold — commit (at an actual quantity) or release (quantity 0, no usage). The hold keeps
 * the price it was reserved at; the policy (overage, free tier, windows) applies to extra units.
 * KEYS hold, lots, lotmeta, freetier, stream, window...
 * ARGV account, feature, action, actual quantity, overage, free units, n windows, (name, limit, seconds)...
 * Returns {'ok'|'replay', json} | {'not_found'} | {'conflict', state, quantity} | {'expired'}.
 */
const SETTLE_HOLD = String.raw`
local h = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
if h.state == nil or h.account ~= ARGV[1] then return { 'not_found' } end
local action, A = ARGV[3], tonumber(ARGV[4])
if h.state ~= 'held' then
  if action == 'released' and h.state ~= 'committed' then return { 'replay', h.result } end
  if h.state == 'committed' and h.cq == ARGV[4] then return { 'replay', h.result } end
  return { 'conflict', h.state, h.cq or '' }
end
local now = now_ms()
local price, overage, free_units = tonumber(h.price), ARGV[5], tonumber(ARGV[6])
local p = cjson.decode(h.plan)
local H = tonumber(h.q)
p.granted = H
local win_keys = {}
for i = 6, #KEYS do win_keys[#win_keys + 1] = KEYS[i] end
local expired = now >= tonumber(h.expires)
if expired or action == 'released' then
  give_back(p, H, price, KEYS[2], KEYS[4], win_keys)
  local state = expired and 'expired' or 'released'
  local result = cjson.encode({ decision_id = h.decision_id, state = state, released_units = H, at = now })
  redis.call('HSET', KEYS[1], 'state', state, 'result', result)
  if expired and action ~= 'released' then return { 'expired' } end
  return { 'ok', result }
end
local written_off_units = 0
if A <= H then
  give_back(p, H - A, price, KEYS[2], KEYS[4], win_keys)
else
  local wins, rate_room = load_windows(KEYS, ARGV, tonumber(ARGV[7]), 8, 6)
  local ft_room = 0
  if free_units > 0 then ft_room = math.max(0, free_units - tonumber(redis.call('GET', KEYS[4]) or '0')) end
  local lots, balance = load_lots(KEYS[2], KEYS[3], now)
  local extra = choose(A - H, rate_room, ft_room, lots, balance, price, overage)
  apply(extra, wins, KEYS[4], KEYS[2], now)
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
local _, balance = load_lots(KEYS[2], KEYS[3], now)
local event = { decision_id = h.decision_id, account = ARGV[1], feature = h.feature, key = h.key, quantity = A,
  sources = sources(p), charged = int(charged(p)), at = now, written_off_units = written_off_units,
  written_off = int(written_off_units * price) }
if A > 0 then redis.call('XADD', KEYS[5], '*', 'usage', cjson.encode(event)) end
event.balance = int(balance)
event.state = 'committed'
local result = cjson.encode(event)
redis.call('HSET', KEYS[1], 'state', 'committed', 'cq', ARGV[4], 'result', result)
return { 'ok', result }
`;

/**
 * grant: credits a lot in Redis exactly once (the ledger has it already).
 * KEYS lots, lotmeta. ARGV lot id, meta (kind|priority|expires ms|created ms), micros.
 * Returns 1 when applied now, 0 when it had been applied before.
 */
const GRANT = String.raw`
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`;

/**
 * snapshot: a consistent read for the account view. KEYS lots, lotmeta, counter...
 * Returns {now ms, lots flat, lotmeta flat, {value, pttl} per counter}.
 */
const SNAPSHOT = String.raw`
local t = redis.call('TIME')
local out = { tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]) }
for i = 3, #KEYS do out[#out + 1] = { redis.call('GET', KEYS[i]) or '0', redis.call('PTTL', KEYS[i]) } end
return out
`;

/**
 * restore: brings back lots Redis does not hold, at the ledger's remaining amounts (after a data
 * loss). A lot Redis holds is live and may have unsettled debits: it is never overwritten.
 * KEYS lots, lotmeta. ARGV (lot id, meta, remaining micros)... Returns how many were restored.
 */
const RESTORE = String.raw`
local restored = 0
for i = 1, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    restored = restored + 1
  end
end
return restored
`;

/**
 * expire_lot: takes a lot's whole remainder at once, so expiry removes exactly what is left (I7).
 * The amount is remembered, so a retried expiry reports the same amount and removes nothing more.
 * KEYS lots, lotmeta. ARGV lot id. Returns the micros removed (as a string).
 */
const EXPIRE_LOT = String.raw`
local done = redis.call('HGET', KEYS[2], ARGV[1] .. ':expired')
if done then return done end
local left = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
redis.call('HSET', KEYS[1], ARGV[1], '0')
redis.call('HSET', KEYS[2], ARGV[1] .. ':expired', left)
return left
`;

/**
 * debit: takes credits from the lots in burn-down order (a negative adjustment), never below zero.
 * Once per key: a retry returns the first answer. KEYS lots, lotmeta. ARGV key, micros.
 * Returns 'lot:micros,...' for what was taken (less than asked when the balance is short).
 */
const DEBIT = String.raw`
local marker = 'debit:' .. ARGV[1]
local done = redis.call('HGET', KEYS[2], marker)
if done then return done end
local lots, balance = load_lots(KEYS[1], KEYS[2], now_ms())
local owed = math.min(tonumber(ARGV[2]), balance)
local taken = {}
for _, lot in ipairs(lots) do
  if owed == 0 then break end
  local d = math.min(lot.rem, owed)
  redis.call('HINCRBY', KEYS[1], lot.id, int(-d))
  owed = owed - d
  taken[#taken + 1] = lot.id .. ':' .. int(d)
end
local result = table.concat(taken, ',')
redis.call('HSET', KEYS[2], marker, result)
return result
`;

const FUNCTIONS = { decide: DECIDE, debit: DEBIT, settle_hold: SETTLE_HOLD, grant: GRANT, snapshot: SNAPSHOT, restore: RESTORE, expire_lot: EXPIRE_LOT };
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
