import { useState } from 'preact/hooks';
import { ApiError, Whoami, api, session } from '../api';
import { ErrorNote, toApiError } from '../ui';

/** Sign in with an API key; it is kept in this tab's session storage only. */
export function SignIn({ onSignedIn, notice }: { onSignedIn: (who: Whoami) => void; notice?: string | null }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const who = await api<Whoami>('GET', '/v1/whoami', undefined, { key: key.trim() });
      session.signIn(key.trim());
      setKey('');
      onSignedIn(who);
    } catch (e) {
      setError(toApiError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" tabIndex={-1} class="sign-in">
      <h1>Spillway console</h1>
      <p>Finance and operations: balances, ledgers, decisions, refunds, approvals and reconciliation.</p>
      {notice && (
        <p class="error" role="alert">
          {notice}
        </p>
      )}
      <form onSubmit={submit} class="card" autoComplete="off">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellcheck={false}
          required
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          aria-describedby="api-key-help"
        />
        <p id="api-key-help" class="muted">
          Kept in this browser tab only, until you sign out or close it.
        </p>
        <ErrorNote error={error} />
        <button type="submit" disabled={busy || !key.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
