import { formatCredits } from '@spillway/contracts/money';
import { EngineDecision, EngineSource, EngineWindow, HoldSettlement } from '@spillway/engine/engine';

const iso = (ms: number) => new Date(ms).toISOString();

function source(s: EngineSource) {
  if (s.lot_id === undefined) return { layer: s.layer, units: s.units };
  return { layer: s.layer, lot_id: s.lot_id, units: s.units, credits: formatCredits(BigInt(s.micros ?? '0')) };
}

const windows = (ws: EngineWindow[]) =>
  ws.map((w) => ({ name: w.name, limit: w.limit, remaining: w.remaining, reset_at: iso(w.reset_at) }));

/**
 * The decision body of the OpenAPI document, rebuilt from the idempotency record (so a replay grants, charges and
 * sources the same), with windows and retry advice as they stand now.
 */
export function presentDecision(d: EngineDecision, replayed: boolean) {
  return {
    decision_id: d.decision_id,
    outcome: d.outcome,
    mode: d.mode,
    granted: d.granted,
    denied: d.denied,
    sources: d.sources.map(source),
    credits_charged: formatCredits(BigInt(d.charged)),
    balance: formatCredits(BigInt(d.balance)),
    windows: windows(d.windows),
    retry_after_seconds: d.retry_after,
    ...(d.retry_reason ? { retry_after_reason: d.retry_reason } : {}),
    ...(d.hold_expires_at ? { hold_expires_at: iso(d.hold_expires_at) } : {}),
    decided_at: iso(d.at),
    replayed,
  };
}

export function presentSettlement(s: HoldSettlement, replayed: boolean) {
  if (s.state !== 'committed') {
    return { decision_id: s.decision_id, status: s.state, released_units: s.released_units ?? 0, at: iso(s.at), replayed };
  }
  return {
    decision_id: s.decision_id,
    status: s.state,
    quantity: s.quantity,
    sources: (s.sources ?? []).map(source),
    credits_charged: formatCredits(BigInt(s.charged ?? '0')),
    written_off_units: s.written_off_units ?? 0,
    credits_written_off: formatCredits(BigInt(s.written_off ?? '0')),
    balance: formatCredits(BigInt(s.balance ?? '0')),
    at: iso(s.at),
    replayed,
  };
}

/**
 * Standard RateLimit headers (IETF httpapi draft) for the binding window: the one with the least
 * room left, and of those the one that resets last. Computed from the time of the answer, so a
 * replay carries the current reset.
 */
export function rateLimitHeaders(d: EngineDecision): Record<string, string> {
  const ws = d.windows;
  if (ws.length === 0) return {};
  const binding = ws.reduce((a, b) => (b.remaining < a.remaining || (b.remaining === a.remaining && b.reset_at > a.reset_at) ? b : a));
  const reset = Math.max(0, Math.ceil((binding.reset_at - d.now) / 1000));
  const headers: Record<string, string> = {
    'RateLimit-Limit': String(binding.limit),
    'RateLimit-Remaining': String(binding.remaining),
    'RateLimit-Reset': String(reset),
  };
  if (d.retry_after !== null) headers['Retry-After'] = String(d.retry_after);
  return headers;
}
