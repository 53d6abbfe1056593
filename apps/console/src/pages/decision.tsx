import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { api, can, enc } from '../api';
import { RefundForm } from '../finance-forms';
import { Credits, ErrorNote, Loading, Section, Time, useLoad, useWho } from '../ui';

interface Layer {
  layer: 'rate_limit' | 'free_tier' | 'credits';
  asked: number | null;
  gave: number;
  had: number | null;
  had_exact: boolean;
  had_credits?: string | null;
  credits?: string;
  lots?: { lot_id: string; kind: string; units: number; credits: string }[];
  note: string | null;
}
interface Explained {
  decision_id: string;
  account_id: string;
  feature: string | null;
  idempotency_key: string | null;
  mode: string;
  outcome: string | null;
  decided_at: string | null;
  credits_charged: string | null;
  balance_after: string | null;
  retry_after_seconds: number | null;
  waterfall: {
    requested: number | null;
    granted: number;
    denied: number | null;
    allow_partial: boolean | null;
    layers: Layer[];
    denied_because: string | null;
  };
  hold: { state: string; expires_at: string | null; units: number } | null;
  settlement: {
    state: string;
    detail: string;
    usage_event_id: string | null;
    monetization_event_id: string | null;
    balance_update_ids: string[];
    settled_at?: string;
    credits_booked?: string;
    credits_written_off?: string;
  };
  refunds: { id: string; credits: string; reason: string; approver: string | null; at: string }[];
  credits_refunded: string;
}

const LAYER_NAMES = { rate_limit: 'Rate-limit windows', free_tier: 'Free tier', credits: 'Credits' };
const SETTLEMENT_WORDS: Record<string, string> = {
  settled: 'Settled',
  pending: 'Not settled yet',
  quarantined: 'Quarantined',
  held: 'Held',
  released: 'Released',
  expired: 'Expired',
  nothing_to_settle: 'Nothing to settle',
};

function Waterfall({ d }: { d: Explained }) {
  const w = d.waterfall;
  return (
    <>
      <p>
        {w.requested === null ? (
          <>
            Granted <strong>{w.granted}</strong> units. Spillway no longer keeps this decision's request (kept for a day), so what was asked
            is not known.
          </>
        ) : (
          <>
            Asked for <strong>{w.requested}</strong> units{w.allow_partial === false ? ' (all or nothing)' : ''}: granted{' '}
            <strong>{w.granted}</strong>, denied <strong>{w.denied}</strong>.
          </>
        )}
      </p>
      <ol class="waterfall" data-testid="waterfall">
        {w.layers.map((l) => (
          <li key={l.layer} class={l.gave > 0 ? 'gave' : 'none'}>
            <h3>{LAYER_NAMES[l.layer]}</h3>
            <dl>
              <dt>Asked</dt>
              <dd>{l.asked === null ? 'unknown' : `${l.asked} units`}</dd>
              <dt>Had</dt>
              <dd>
                {l.had === null ? 'unknown' : `${l.had_exact ? '' : 'at least '}${l.had} units`}
                {l.had_credits ? (
                  <>
                    {' '}
                    (balance <Credits value={l.had_credits} /> credits)
                  </>
                ) : null}
              </dd>
              <dt>Gave</dt>
              <dd>
                {l.gave} units
                {l.credits !== undefined && l.gave > 0 ? (
                  <>
                    {' '}
                    for <Credits value={l.credits} /> credits
                  </>
                ) : null}
              </dd>
            </dl>
            {l.lots && l.lots.length > 0 && (
              <ul class="small">
                {l.lots.map((lot) => (
                  <li key={lot.lot_id}>
                    {lot.kind} lot <code>{lot.lot_id.slice(0, 12)}</code>: {lot.units} units, <Credits value={lot.credits} /> credits
                  </li>
                ))}
              </ul>
            )}
            {l.note && <p class="note">{l.note}</p>}
          </li>
        ))}
      </ol>
      {w.denied_because && (
        <p class="denied" role="note">
          <strong>Why the rest was denied:</strong> {w.denied_because}
        </p>
      )}
    </>
  );
}

/** /console/decisions/{id}: the waterfall, the settlement state and the linked ledger rows; refund from here. */
export function DecisionPage({ id }: { id: string }) {
  const who = useWho();
  const { query } = useLocation();
  const [version, setVersion] = useState(0);
  const path =
    id === 'by-key'
      ? `/v1/decisions?account_id=${enc(query.account_id ?? '')}&idempotency_key=${enc(query.idempotency_key ?? '')}`
      : `/v1/decisions/${enc(id)}`;
  const found = useLoad(() => api<Explained>('GET', path), [path, version]);
  const d = found.data;
  return (
    <main id="main" tabIndex={-1}>
      <h1>Decision {d ? <code>{d.decision_id}</code> : id === 'by-key' ? 'by idempotency key' : <code>{id}</code>}</h1>
      <ErrorNote error={found.error} />
      {!d && !found.error && <Loading what="the decision" />}
      {d && (
        <>
          <p>
            Account <a href={`/console/accounts/${enc(d.account_id)}`}>{d.account_id}</a> · feature <strong>{d.feature ?? '?'}</strong> ·{' '}
            {d.mode} · outcome <strong data-testid="outcome">{d.outcome ?? 'unknown'}</strong> · decided <Time at={d.decided_at} />
            {d.idempotency_key ? (
              <>
                {' '}
                · idempotency key <code>{d.idempotency_key}</code>
              </>
            ) : null}
          </p>
          <div class="grid">
            <Section title="Waterfall">
              <Waterfall d={d} />
            </Section>
            <Section title="Settlement">
              <p>
                <strong data-testid="settlement-state">{SETTLEMENT_WORDS[d.settlement.state] ?? d.settlement.state}</strong>:{' '}
                {d.settlement.detail}
                {d.settlement.settled_at ? (
                  <>
                    {' '}
                    on <Time at={d.settlement.settled_at} />
                  </>
                ) : null}
                .
              </p>
              <ol class="chain" aria-label="Linked records">
                <li>
                  Usage event:{' '}
                  {d.settlement.usage_event_id ? <code>{d.settlement.usage_event_id}</code> : <span class="muted">none yet</span>}
                </li>
                <li>
                  Monetization event:{' '}
                  {d.settlement.monetization_event_id ? (
                    <code>{d.settlement.monetization_event_id}</code>
                  ) : (
                    <span class="muted">none yet</span>
                  )}
                  {d.settlement.credits_booked ? (
                    <>
                      {' '}
                      (<Credits value={d.settlement.credits_booked} /> credits
                      {d.settlement.credits_written_off && d.settlement.credits_written_off !== '0.000000' ? (
                        <>
                          , <Credits value={d.settlement.credits_written_off} /> written off
                        </>
                      ) : null}
                      )
                    </>
                  ) : null}
                </li>
                <li>
                  Balance updates:{' '}
                  {d.settlement.balance_update_ids.length === 0 ? (
                    <span class="muted">none</span>
                  ) : (
                    d.settlement.balance_update_ids.map((b, i) => (
                      <span key={b}>
                        {i > 0 ? ', ' : ''}
                        <a href={`/console/accounts/${enc(d.account_id)}#bu-${b}`}>{b}</a>
                      </span>
                    ))
                  )}
                </li>
              </ol>
              {d.hold && (
                <p>
                  Hold: {d.hold.state}, {d.hold.units} units
                  {d.hold.expires_at ? (
                    <>
                      , expires <Time at={d.hold.expires_at} />
                    </>
                  ) : null}
                  .
                </p>
              )}
              <h3>Refunds</h3>
              {d.refunds.length === 0 ? (
                <p class="muted">None.</p>
              ) : (
                <ul data-testid="refunds">
                  {d.refunds.map((r) => (
                    <li key={r.id}>
                      <Credits value={r.credits} /> credits on <Time at={r.at} /> — {r.reason}
                      {r.approver ? ` (approved by ${r.approver})` : ''}
                    </li>
                  ))}
                </ul>
              )}
              <button type="button" class="link" onClick={() => setVersion((v) => v + 1)}>
                Refresh
              </button>
            </Section>
          </div>
          {can(who, 'finance') && d.credits_charged && d.credits_charged !== '0.000000' && (
            <Section title="Refund">
              <p>
                Charged <Credits value={d.credits_charged} /> credits; refunded so far <Credits value={d.credits_refunded} />.
              </p>
              <RefundForm accountId={d.account_id} decisionId={d.decision_id} onDone={() => setVersion((v) => v + 1)} />
            </Section>
          )}
        </>
      )}
    </main>
  );
}
