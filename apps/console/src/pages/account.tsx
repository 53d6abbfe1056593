import { useState } from 'preact/hooks';
import { api, can, enc, temporalLinks } from '../api';
import { FinanceActions } from '../finance-forms';
import { UsageChart, UsagePoint } from '../usage-chart';
import { Credits, ErrorNote, Loading, Section, Time, toApiError, useLoad, useWho } from '../ui';

interface Window {
  name: string;
  limit: number;
  remaining: number;
  reset_at: string;
}
interface Account {
  id: string;
  plan: string;
  tenant?: string;
  balance: string;
  lots: { id: string; kind: string; remaining: string; expires_at: string | null }[];
  features: Record<string, { windows: Window[]; free_tier_remaining: number }>;
  as_of: string;
}
interface LedgerItem {
  id: string;
  kind: string;
  credits: string;
  lot_id: string;
  at: string;
  usage_event_id?: string;
  monetization_event_id?: string;
  cause?: { type: string; id: string };
}
interface LedgerPage {
  balance: string;
  unsettled_decisions: number;
  items: LedgerItem[];
  next_cursor: string | null;
}
interface WorkflowItem {
  workflow_id: string;
  type: string;
  status: string;
  started_at: string;
}

const KIND_WORDS: Record<string, string> = {
  debit: 'Usage charge',
  grant: 'Grant',
  purchase: 'Purchase',
  refund: 'Refund',
  adjustment: 'Adjustment',
  expiry: 'Expiry',
  repair: 'Repair',
  write_off: 'Write-off',
};

/** The three linked datasets from one ledger row: usage event → monetization event → balance updates. */
function LedgerRowLinks({ item, accountId }: { item: LedgerItem; accountId: string }) {
  const who = useWho();
  if (item.usage_event_id) {
    return (
      <>
        <a href={`/console/decisions/${enc(item.usage_event_id)}`} aria-label={`Usage event ${item.usage_event_id}: explain the decision`}>
          usage event
        </a>
        {' → '}
        <span title={item.monetization_event_id}>monetization event</span>
        {' → '}
        <a href={`/console/accounts/${enc(accountId)}#bu-${item.id}`}>balance update {item.id}</a>
      </>
    );
  }
  if (!item.cause) return null;
  // Workflow-caused rows: the cause id is the workflow (or its idempotency key); Temporal shows it.
  return (
    <a href={temporalLinks(who).account(accountId)} target="_blank" rel="noopener noreferrer">
      {item.cause.type} {item.cause.id.length > 40 ? `${item.cause.id.slice(0, 40)}…` : item.cause.id}
    </a>
  );
}

function Ledger({ accountId, version }: { accountId: string; version: number }) {
  const [pages, setPages] = useState<LedgerPage[]>([]);
  const first = useLoad(async () => {
    const page = await api<LedgerPage>('GET', `/v1/accounts/${enc(accountId)}/ledger`);
    setPages([page]);
    return page;
  }, [accountId, version]);
  const [moreError, setMoreError] = useState<ReturnType<typeof toApiError> | null>(null);
  const last = pages[pages.length - 1];
  const more = async () => {
    try {
      const page = await api<LedgerPage>('GET', `/v1/accounts/${enc(accountId)}/ledger?cursor=${enc(last.next_cursor!)}`);
      setPages([...pages, page]);
    } catch (e) {
      setMoreError(toApiError(e));
    }
  };
  if (first.error) return <ErrorNote error={first.error} />;
  if (!first.data) return <Loading what="the ledger" />;
  const items = pages.flatMap((p) => p.items);
  const hash = typeof location !== 'undefined' ? location.hash.slice(1) : '';
  return (
    <>
      <p>
        Settled balance{' '}
        <strong data-testid="ledger-balance">
          <Credits value={first.data.balance} />
        </strong>{' '}
        credits
        {first.data.unsettled_decisions > 0
          ? ` · ${first.data.unsettled_decisions} decisions not settled yet`
          : ' · everything settled'}.{' '}
        <button type="button" class="link" onClick={first.reload}>
          Refresh
        </button>
      </p>
      {items.length === 0 ? (
        <p class="muted">No balance updates yet.</p>
      ) : (
        <div class="table-wrap">
          <table data-testid="ledger">
            <caption class="sr-only">Balance updates, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">What</th>
                <th scope="col" class="num">
                  Credits
                </th>
                <th scope="col">Lot</th>
                <th scope="col">Linked</th>
              </tr>
            </thead>
            <tbody>
              {items.map((item) => (
                <tr key={item.id} id={`bu-${item.id}`} class={hash === `bu-${item.id}` ? 'highlight' : undefined}>
                  <td>
                    <Time at={item.at} />
                  </td>
                  <td>{KIND_WORDS[item.kind] ?? item.kind}</td>
                  <td class="num">
                    <Credits value={item.credits} signed />
                  </td>
                  <td>
                    <code title={item.lot_id}>{item.lot_id.slice(0, 12)}</code>
                  </td>
                  <td>
                    <LedgerRowLinks item={item} accountId={accountId} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ErrorNote error={moreError} />
      {last?.next_cursor && (
        <button type="button" onClick={more}>
          Show older updates
        </button>
      )}
    </>
  );
}

function Usage({ accountId, version }: { accountId: string; version: number }) {
  const [bucket, setBucket] = useState<'day' | 'hour'>('hour');
  const usage = useLoad(
    () => api<{ points: UsagePoint[] }>('GET', `/v1/accounts/${enc(accountId)}/usage?bucket=${bucket}`),
    [accountId, bucket, version],
  );
  return (
    <>
      <fieldset class="inline">
        <legend>Period</legend>
        <label>
          <input type="radio" name="bucket" checked={bucket === 'hour'} onChange={() => setBucket('hour')} /> Hourly, last 7 days
        </label>
        <label>
          <input type="radio" name="bucket" checked={bucket === 'day'} onChange={() => setBucket('day')} /> Daily, last 90 days
        </label>
      </fieldset>
      <ErrorNote error={usage.error} />
      {usage.data ? <UsageChart points={usage.data.points} bucket={bucket} /> : !usage.error && <Loading what="usage" />}
    </>
  );
}

function Workflows({ accountId, version }: { accountId: string; version: number }) {
  const who = useWho();
  const list = useLoad(() => api<{ items: WorkflowItem[] }>('GET', `/v1/accounts/${enc(accountId)}/workflows`), [accountId, version]);
  if (list.error) return <ErrorNote error={list.error} />;
  if (!list.data) return <Loading what="workflows" />;
  if (list.data.items.length === 0) return <p class="muted">No financial workflows yet.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Started</th>
            <th scope="col">Workflow</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {list.data.items.slice(0, 20).map((w) => (
            <tr key={w.workflow_id}>
              <td>
                <Time at={w.started_at} />
              </td>
              <td>
                <a href={temporalLinks(who).workflow(w.workflow_id)} target="_blank" rel="noopener noreferrer">
                  {w.workflow_id}
                </a>
              </td>
              <td>{w.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** /console/accounts/{id}: plan, real-time balance, lots, windows, free tier, usage chart, ledger, finance actions. */
export function AccountPage({ id }: { id: string }) {
  const who = useWho();
  const [version, setVersion] = useState(0);
  const account = useLoad(() => api<Account>('GET', `/v1/accounts/${enc(id)}`), [id, version]);
  const refresh = () => setVersion((v) => v + 1);
  const a = account.data;
  return (
    <main id="main" tabIndex={-1}>
      <h1>
        Account <code>{id}</code>
      </h1>
      <p class="links">
        <a href={temporalLinks(who).account(id)} target="_blank" rel="noopener noreferrer">
          Workflows of this account in the Temporal UI
        </a>
      </p>
      <ErrorNote error={account.error} />
      {!a && !account.error && <Loading what="the account" />}
      {a && (
        <div class="grid">
          <Section title="Balance">
            <p class="big" data-testid="balance">
              <Credits value={a.balance} /> <span class="unit">credits</span>
            </p>
            <p class="muted">
              Real time, as of <Time at={a.as_of} />. Plan <strong>{a.plan}</strong>
              {a.tenant ? (
                <>
                  {' '}
                  · tenant <strong>{a.tenant}</strong>
                </>
              ) : null}
              .{' '}
              <button type="button" class="link" onClick={refresh}>
                Refresh
              </button>
            </p>
          </Section>
          <Section title="Credit lots">
            {a.lots.length === 0 ? (
              <p class="muted">No spendable lots.</p>
            ) : (
              <div class="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Kind</th>
                      <th scope="col" class="num">
                        Remaining
                      </th>
                      <th scope="col">Expires</th>
                      <th scope="col">Lot</th>
                    </tr>
                  </thead>
                  <tbody>
                    {a.lots.map((lot) => (
                      <tr key={lot.id}>
                        <td>{lot.kind}</td>
                        <td class="num">
                          <Credits value={lot.remaining} />
                        </td>
                        <td>{lot.expires_at ? <Time at={lot.expires_at} /> : 'never'}</td>
                        <td>
                          <code title={lot.id}>{lot.id.slice(0, 12)}</code>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Section>
          <Section title="Limits and free tier">
            {Object.keys(a.features).length === 0 && <p class="muted">The plan meters no features.</p>}
            {Object.entries(a.features).map(([feature, f]) => (
              <div key={feature} class="feature">
                <h3>{feature}</h3>
                <p>
                  Free tier left this month: <strong>{f.free_tier_remaining}</strong> units
                </p>
                {f.windows.length === 0 ? (
                  <p class="muted">No rate-limit windows.</p>
                ) : (
                  <ul class="windows">
                    {f.windows.map((w) => (
                      <li key={w.name}>
                        <label>
                          Window {w.name}: {w.remaining} of {w.limit} left, resets <Time at={w.reset_at} />
                          <meter min={0} max={w.limit} value={w.remaining} low={w.limit * 0.2} optimum={w.limit} />
                        </label>
                      </li>
                    ))}
                  </ul>
                )}
              </div>
            ))}
          </Section>
        </div>
      )}
      {a && (
        <>
          <Section title="Usage over time">
            <Usage accountId={id} version={version} />
          </Section>
          <Section title="Ledger">
            <Ledger accountId={id} version={version} />
          </Section>
          {can(who, 'finance') && (
            <Section title="Finance actions">
              <FinanceActions accountId={id} onDone={refresh} />
            </Section>
          )}
          {can(who, 'finance') && (
            <Section title="Workflows">
              <Workflows accountId={id} version={version} />
            </Section>
          )}
        </>
      )}
    </main>
  );
}
