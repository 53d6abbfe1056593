import { ComponentChildren, createContext } from 'preact';
import { useCallback, useContext, useEffect, useState } from 'preact/hooks';
import { ApiError, Whoami } from './api';

/** The signed-in key's description (scopes, Temporal UI), shared by every page. */
export const WhoContext = createContext<Whoami | null>(null);
export const useWho = () => useContext(WhoContext);

/** Loads data for a page; `reload` fetches again. Errors are ApiError (plain words). */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const run = useCallback(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => live && setState({ error: toApiError(error), loading: false }),
    );
    return () => {
      live = false;
    };
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

export const toApiError = (error: unknown) =>
  error instanceof ApiError ? error : new ApiError(0, 'Something went wrong in the console; reload the page.');

/** An error said in plain words, announced to screen readers. */
export function ErrorNote({ error }: { error?: ApiError | null }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.message}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  const headingId = `${id ?? title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-heading`;
  return (
    <section aria-labelledby={headingId} class="card">
      <h2 id={headingId}>{title}</h2>
      {children}
    </section>
  );
}

/** A time in the reader's locale, with the exact UTC time as a tooltip and machine-readable value. */
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">—</span>;
  const date = new Date(at);
  return (
    <time dateTime={at} title={at}>
      {date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}
    </time>
  );
}

/** Credits as the API gives them (exact decimal strings), trimmed of trailing zeros for reading. */
export function Credits({ value, signed }: { value: string | null | undefined; signed?: boolean }) {
  if (value === null || value === undefined) return <span class="muted">—</span>;
  const trimmed = value.includes('.') ? value.replace(/0+$/, '').replace(/\.$/, '') : value;
  const negative = trimmed.startsWith('-');
  return (
    <span class={`credits${signed ? (negative ? ' negative' : ' positive') : ''}`}>{signed && !negative ? `+${trimmed}` : trimmed}</span>
  );
}
