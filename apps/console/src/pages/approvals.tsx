import { useState } from 'preact/hooks';
import type { components } from '@spillway/client/generated/openapi';
import { ApiError, api, can, enc, temporalLinks } from '../api';
import { Credits, ErrorNote, Loading, Time, toApiError, useLoad, useWho } from '../ui';

/** A change waiting for an approver, as the API documents it (types generated from the OpenAPI document). */
type Waiting = components['schemas']['PendingApprovalView'];

function Row({ item, onDone }: { item: Waiting; onDone: () => void }) {
  const who = useWho();
  const [note, setNote] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const decide = async (approve: boolean) => {
    setBusy(true);
    setError(null);
    try {
      await api('POST', `/v1/approvals/${enc(item.workflow_id)}`, { approve, ...(note.trim() ? { note: note.trim() } : {}) });
      setDone(approve ? 'Approved' : 'Rejected');
      onDone();
    } catch (e) {
      setError(toApiError(e));
    } finally {
      setBusy(false);
    }
  };
  const noteId = `note-${item.workflow_id}`;
  return (
    <li class="card approval" data-testid="approval">
      <h2>
        {item.operation ?? item.type} of <Credits value={item.credits} /> credits
      </h2>
      <p>
        Account {item.account_id ? <a href={`/console/accounts/${enc(item.account_id)}`}>{item.account_id}</a> : 'unknown'}
        {item.decision_id ? (
          <>
            {' '}
            · decision <a href={`/console/decisions/${enc(item.decision_id)}`}>{item.decision_id}</a>
          </>
        ) : null}{' '}
        · requested by <code>{item.requested_by ?? 'unknown'}</code> on <Time at={item.started_at} />
      </p>
      <p>Reason: {item.reason ?? <span class="muted">none given</span>}</p>
      <p class="small">
        <a href={temporalLinks(who).workflow(item.workflow_id)} target="_blank" rel="noopener noreferrer">
          {item.workflow_id} in Temporal
        </a>
      </p>
      {done ? (
        <p role="status" class="ok">
          {done}.
        </p>
      ) : !can(who, 'approve') ? (
        <p class="muted">Approving or rejecting needs a key with the approve scope (and not the requester's).</p>
      ) : (
        <>
          <label for={noteId}>
            Note <span class="muted">(optional)</span>
          </label>
          <input id={noteId} value={note} onInput={(e) => setNote((e.target as HTMLInputElement).value)} />
          <ErrorNote error={error} />
          <div class="buttons">
            <button type="button" disabled={busy} onClick={() => decide(true)}>
              Approve
            </button>
            <button type="button" class="secondary" disabled={busy} onClick={() => decide(false)}>
              Reject
            </button>
          </div>
        </>
      )}
    </li>
  );
}

/** /console/approvals: refunds, adjustments and grants waiting for a second person. */
export function ApprovalsPage() {
  const list = useLoad(() => api<{ items: Waiting[] }>('GET', '/v1/approvals'), []);
  return (
    <main id="main" tabIndex={-1}>
      <h1>Approvals</h1>
      <p class="muted">
        Changes above the approval threshold wait here. Four eyes: the key that asked for a change cannot approve it.{' '}
        <button type="button" class="link" onClick={list.reload}>
          Refresh
        </button>
      </p>
      <ErrorNote error={list.error} />
      {!list.data && !list.error && <Loading what="the approvals queue" />}
      {list.data && list.data.items.length === 0 && <p>Nothing is waiting for approval.</p>}
      {list.data && list.data.items.length > 0 && (
        <ul class="plain">
          {list.data.items.map((item) => (
            <Row key={item.workflow_id} item={item} onDone={() => undefined} />
          ))}
        </ul>
      )}
    </main>
  );
}
