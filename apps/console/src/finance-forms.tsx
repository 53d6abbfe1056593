import { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError, api, enc, newIdempotencyKey, temporalLinks } from './api';
import { ErrorNote, toApiError, useWho } from './ui';

interface Started {
  workflow_id: string;
  run_id?: string;
}

interface WorkflowStatus {
  status: string;
  state: string | null;
  result: { status?: string } | null;
}

const STATUS_WORDS: Record<string, string> = {
  awaiting_approval: 'waiting for approval by a second person',
  completed: 'done',
  running: 'in progress',
  failed: 'failed',
  terminated: 'stopped',
  canceled: 'cancelled',
  timed_out: 'timed out',
};

/** Follows a started workflow for a few seconds so the form can say where it stands (bounded polling). */
async function follow(workflowId: string, onStatus: (text: string) => void): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const w = await api<WorkflowStatus>('GET', `/v1/workflows/${enc(workflowId)}`).catch(() => null);
    if (w) {
      const word = w.state === 'awaiting_approval' ? STATUS_WORDS.awaiting_approval : (STATUS_WORDS[w.status] ?? w.status);
      onStatus(w.result?.status ? `${word} (${w.result.status})` : word);
      if (w.status !== 'running' || w.state === 'awaiting_approval') return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * One finance action: a form whose submission starts a workflow with a generated idempotency key.
 * The key is kept until the action succeeds, so a retry after a lost answer cannot double it.
 */
function ActionForm(props: {
  id: string;
  title: string;
  submitLabel: string;
  keyPrefix: string;
  build: (key: string) => { path: string; body: unknown } | string;
  onDone?: () => void;
  children: ComponentChildren;
}) {
  const who = useWho();
  const [key, setKey] = useState(() => newIdempotencyKey(props.keyPrefix));
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [started, setStarted] = useState<{ id: string; status: string } | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const request = props.build(key);
    if (typeof request === 'string') {
      setError(new ApiError(400, request));
      return;
    }
    setBusy(true);
    try {
      const done = await api<Started>('POST', request.path, request.body);
      setStarted({ id: done.workflow_id, status: 'started' });
      setKey(newIdempotencyKey(props.keyPrefix));
      (event.target as HTMLFormElement).reset();
      await follow(done.workflow_id, (status) => setStarted({ id: done.workflow_id, status }));
      props.onDone?.();
    } catch (e) {
      setError(toApiError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card action" onSubmit={submit} aria-labelledby={`${props.id}-title`}>
      <h3 id={`${props.id}-title`}>{props.title}</h3>
      {props.children}
      <p class="muted small">
        Idempotency key: <code>{key}</code>
      </p>
      <ErrorNote error={error} />
      {started && (
        <p role="status" class="ok">
          Started <code>{started.id}</code>: {started.status}.{' '}
          <a href={temporalLinks(who).workflow(started.id)} target="_blank" rel="noopener noreferrer">
            Open in Temporal
          </a>
        </p>
      )}
      <button type="submit" disabled={busy}>
        {busy ? 'Working…' : props.submitLabel}
      </button>
    </form>
  );
}

const value = (form: string, name: string) => ((document.getElementById(`${form}-${name}`) as HTMLInputElement | null)?.value ?? '').trim();

function Field({
  form,
  name,
  label,
  hint,
  type = 'text',
  required = true,
  defaultValue,
}: {
  form: string;
  name: string;
  label: string;
  hint?: string;
  type?: 'text' | 'datetime-local';
  required?: boolean;
  defaultValue?: string;
}) {
  const id = `${form}-${name}`;
  return (
    <div class="field">
      <label for={id}>
        {label}
        {!required && <span class="muted"> (optional)</span>}
      </label>
      {type === 'datetime-local' ? (
        <input id={id} name={name} type="datetime-local" required={required} aria-describedby={hint ? `${id}-hint` : undefined} />
      ) : (
        <input
          id={id}
          name={name}
          type="text"
          required={required}
          defaultValue={defaultValue}
          aria-describedby={hint ? `${id}-hint` : undefined}
        />
      )}
      {hint && (
        <p id={`${id}-hint`} class="muted small">
          {hint}
        </p>
      )}
    </div>
  );
}

const CREDITS = /^\d{1,16}(\.\d{1,6})?$/;
const SIGNED = /^-?\d{1,16}(\.\d{1,6})?$/;

/** Refund of a decision's charge (all of it, or `credits` of it) or of an amount. */
export function RefundForm({ accountId, decisionId, onDone }: { accountId: string; decisionId?: string; onDone?: () => void }) {
  const f = decisionId ? 'refund-decision' : 'refund';
  return (
    <ActionForm
      id={f}
      title={decisionId ? 'Refund this decision' : 'Refund'}
      submitLabel="Request refund"
      keyPrefix="refund"
      onDone={onDone}
      build={(key) => {
        const credits = value(f, 'credits');
        const reason = value(f, 'reason');
        const decision = decisionId ?? value(f, 'decision');
        if (credits && !CREDITS.test(credits)) return 'Credits must be a positive number with up to 6 decimal places.';
        if (!credits && !decision) return 'Give a decision to refund, or an amount of credits.';
        if (!reason) return 'A reason is required.';
        return {
          path: '/v1/refunds',
          body: {
            account_id: accountId,
            ...(decision ? { decision_id: decision } : {}),
            ...(credits ? { credits } : {}),
            reason,
            idempotency_key: key,
          },
        };
      }}
    >
      {!decisionId && (
        <Field
          form={f}
          name="decision"
          label="Decision id"
          required={false}
          hint="Refunds what that decision charged; leave empty to refund an amount."
        />
      )}
      <Field
        form={f}
        name="credits"
        label="Credits"
        required={false}
        hint={
          decisionId
            ? 'Leave empty to refund everything it charged that is not refunded yet.'
            : 'Up to what was charged and not yet refunded.'
        }
      />
      <Field form={f} name="reason" label="Reason" />
    </ActionForm>
  );
}

/** Purchase, promo grant, signed adjustment, and refund for one account. */
export function FinanceActions({ accountId, onDone }: { accountId: string; onDone?: () => void }) {
  return (
    <div class="grid actions">
      <ActionForm
        id="purchase"
        title="Purchase"
        submitLabel="Buy credits"
        keyPrefix="purchase"
        onDone={onDone}
        build={(key) => {
          const credits = value('purchase', 'credits');
          if (!CREDITS.test(credits)) return 'Credits must be a positive number with up to 6 decimal places.';
          return { path: '/v1/purchases', body: { account_id: accountId, credits, idempotency_key: key } };
        }}
      >
        <Field form="purchase" name="credits" label="Credits" />
      </ActionForm>
      <ActionForm
        id="promo"
        title="Promo grant"
        submitLabel="Grant promo credits"
        keyPrefix="promo"
        onDone={onDone}
        build={(key) => {
          const credits = value('promo', 'credits');
          const expires = value('promo', 'expires');
          const reason = value('promo', 'reason');
          if (!CREDITS.test(credits)) return 'Credits must be a positive number with up to 6 decimal places.';
          if (!reason) return 'A reason is required.';
          const expiresAt = expires ? new Date(expires) : null;
          if (expiresAt && Number.isNaN(expiresAt.getTime())) return 'The expiry is not a valid date and time.';
          return {
            path: '/v1/grants',
            body: {
              account_id: accountId,
              kind: 'promo',
              credits,
              reason,
              idempotency_key: key,
              ...(expiresAt ? { expires_at: expiresAt.toISOString() } : {}),
            },
          };
        }}
      >
        <Field form="promo" name="credits" label="Credits" />
        <Field
          form="promo"
          name="expires"
          label="Expires at"
          type="datetime-local"
          required={false}
          hint="In your local time; the remainder expires then."
        />
        <Field form="promo" name="reason" label="Reason" />
      </ActionForm>
      <ActionForm
        id="adjustment"
        title="Adjustment"
        submitLabel="Adjust balance"
        keyPrefix="adjustment"
        onDone={onDone}
        build={(key) => {
          const credits = value('adjustment', 'credits');
          const reason = value('adjustment', 'reason');
          if (!SIGNED.test(credits) || /^-?0*(\.0*)?$/.test(credits))
            return 'Credits must be a non-zero signed number with up to 6 decimal places (negative takes credits away).';
          if (!reason) return 'A reason is required.';
          return { path: '/v1/adjustments', body: { account_id: accountId, credits, reason, idempotency_key: key } };
        }}
      >
        <Field
          form="adjustment"
          name="credits"
          label="Credits (signed)"
          hint="Positive adds credits, negative takes them away (never below zero)."
        />
        <Field form="adjustment" name="reason" label="Reason" />
      </ActionForm>
      <RefundForm accountId={accountId} onDone={onDone} />
    </div>
  );
}
