import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { enc } from '../api';

/** Start: open an account or explain a decision by id. */
export function HomePage() {
  const { route } = useLocation();
  const [account, setAccount] = useState('');
  const [decision, setDecision] = useState('');
  const [byKeyAccount, setByKeyAccount] = useState('');
  const [byKey, setByKey] = useState('');
  return (
    <main id="main" tabIndex={-1}>
      <h1>Start</h1>
      <div class="grid">
        <form
          class="card"
          onSubmit={(e) => {
            e.preventDefault();
            if (account.trim()) route(`/console/accounts/${enc(account.trim())}`);
          }}
        >
          <h2>Open an account</h2>
          <label for="open-account">Account id</label>
          <input
            id="open-account"
            required
            value={account}
            onInput={(e) => setAccount((e.target as HTMLInputElement).value)}
            placeholder="acct_1"
          />
          <button type="submit">Open account</button>
        </form>
        <form
          class="card"
          onSubmit={(e) => {
            e.preventDefault();
            if (decision.trim()) route(`/console/decisions/${enc(decision.trim())}`);
          }}
        >
          <h2>Explain a decision</h2>
          <label for="open-decision">Decision id</label>
          <input
            id="open-decision"
            required
            value={decision}
            onInput={(e) => setDecision((e.target as HTMLInputElement).value)}
            placeholder="dec_p0_…"
          />
          <button type="submit">Explain decision</button>
        </form>
        <form
          class="card"
          onSubmit={(e) => {
            e.preventDefault();
            if (byKeyAccount.trim() && byKey.trim())
              route(`/console/decisions/by-key?account_id=${enc(byKeyAccount.trim())}&idempotency_key=${enc(byKey.trim())}`);
          }}
        >
          <h2>Find a decision by its idempotency key</h2>
          <p class="muted">Also finds denied decisions, while Spillway keeps their record.</p>
          <label for="key-account">Account id</label>
          <input id="key-account" required value={byKeyAccount} onInput={(e) => setByKeyAccount((e.target as HTMLInputElement).value)} />
          <label for="key-key">Idempotency key</label>
          <input id="key-key" required value={byKey} onInput={(e) => setByKey((e.target as HTMLInputElement).value)} />
          <button type="submit">Find decision</button>
        </form>
      </div>
    </main>
  );
}
