import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { ApiError, api, enc, temporalLinks } from '../api';
import { ErrorNote, Loading, Section, Time, toApiError, useLoad, useWho } from '../ui';

interface ReportSummary {
  id: string;
  status: string;
  started_at: string;
  finished_at: string | null;
  discrepancies: number;
  repaired: number;
}
interface Report {
  id: string;
  status: string;
  started_at?: string;
  finished_at?: string | null;
  checked: Record<string, unknown>;
  discrepancies: Record<string, unknown>[];
  repaired: Record<string, unknown>[];
}

/** A discrepancy or repair as a definition list: its fields in plain words, never raw JSON. */
function Fields({ item }: { item: Record<string, unknown> }) {
  return (
    <dl class="fields">
      {Object.entries(item).map(([k, v]) => (
        <div key={k}>
          <dt>{k.replace(/_/g, ' ')}</dt>
          <dd>
            {v === null
              ? '—'
              : typeof v === 'object'
                ? Object.entries(v as Record<string, unknown>)
                    .map(([a, b]) => `${a.replace(/_/g, ' ')}: ${String(b)}`)
                    .join(', ')
                : String(v)}
          </dd>
        </div>
      ))}
    </dl>
  );
}

function ReportDetail({ id, onRefresh }: { id: string; onRefresh: () => void }) {
  const who = useWho();
  const report = useLoad(() => api<Report>('GET', `/v1/reconciliations/${enc(id)}`), [id]);
  if (report.error) return <ErrorNote error={report.error} />;
  if (!report.data) return <Loading what="the report" />;
  const r = report.data;
  return (
    <Section title={`Report ${r.id}`} id="report">
      <p>
        Status <strong>{r.status}</strong>
        {r.started_at ? (
          <>
            , started <Time at={r.started_at} />
          </>
        ) : null}
        {r.finished_at ? (
          <>
            , finished <Time at={r.finished_at} />
          </>
        ) : null}
        .{' '}
        <a href={temporalLinks(who).workflow(r.id)} target="_blank" rel="noopener noreferrer">
          Open in Temporal
        </a>{' '}
        <button
          type="button"
          class="link"
          onClick={() => {
            report.reload();
            onRefresh();
          }}
        >
          Refresh
        </button>
      </p>
      <h3>Checked</h3>
      {Object.keys(r.checked).length === 0 ? <p class="muted">Nothing yet.</p> : <Fields item={r.checked} />}
      <h3>Discrepancies ({r.discrepancies.length})</h3>
      {r.discrepancies.length === 0 ? (
        <p>None: the ledger, the real-time balances and the invariants agree.</p>
      ) : (
        <ol>
          {r.discrepancies.map((d, i) => (
            <li key={i}>
              <Fields item={d} />
            </li>
          ))}
        </ol>
      )}
      <h3>Repairs ({r.repaired.length})</h3>
      {r.repaired.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <ol>
          {r.repaired.map((d, i) => (
            <li key={i}>
              <Fields item={d} />
            </li>
          ))}
        </ol>
      )}
    </Section>
  );
}

/** /console/reconciliation[/{id}]: reports, their discrepancies and repairs; start a run. */
export function ReconciliationPage({ id }: { id?: string }) {
  const { route } = useLocation();
  const list = useLoad(() => api<{ items: ReportSummary[] }>('GET', '/v1/reconciliations'), []);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const started = await api<{ workflow_id: string }>('POST', '/v1/reconciliations');
      route(`/console/reconciliation/${enc(started.workflow_id)}`);
      list.reload();
    } catch (e) {
      setError(toApiError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" tabIndex={-1}>
      <h1>Reconciliation</h1>
      <p>
        Proves the ledger's invariants (no double charge, linkage, conservation, real-time equals ledger, expiry) and repairs drift.{' '}
        <button type="button" onClick={start} disabled={busy}>
          {busy ? 'Starting…' : 'Start a run now'}
        </button>
      </p>
      <ErrorNote error={error} />
      {id && <ReportDetail id={id} onRefresh={list.reload} />}
      <Section title="Reports">
        <ErrorNote error={list.error} />
        {!list.data && !list.error && <Loading what="reports" />}
        {list.data && list.data.items.length === 0 && <p class="muted">No reports yet.</p>}
        {list.data && list.data.items.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">Report</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    Discrepancies
                  </th>
                  <th scope="col" class="num">
                    Repairs
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((r) => (
                  <tr key={r.id}>
                    <td>
                      <Time at={r.started_at} />
                    </td>
                    <td>
                      <a href={`/console/reconciliation/${enc(r.id)}`}>{r.id}</a>
                    </td>
                    <td>{r.status}</td>
                    <td class="num">{r.discrepancies}</td>
                    <td class="num">{r.repaired}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
    </main>
  );
}
