import { render } from 'preact';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { UNAUTHORIZED, Whoami, api, can, session } from './api';
import { AccountPage } from './pages/account';
import { ApprovalsPage } from './pages/approvals';
import { DecisionPage } from './pages/decision';
import { HomePage } from './pages/home';
import { ReconciliationPage } from './pages/reconciliation';
import { SignIn } from './pages/sign-in';
import { WhoContext } from './ui';

function NotFound() {
  return (
    <main id="main" tabIndex={-1}>
      <h1>Page not found</h1>
      <p>
        <a href="/console">Back to the start</a>
      </p>
    </main>
  );
}

function Shell() {
  const [who, setWho] = useState<Whoami | null>(null);
  const [checking, setChecking] = useState(!!session.key());
  const [notice, setNotice] = useState<string | null>(null);
  const { path } = useLocation();

  // A key already in this tab's session: ask the API who it is (a revoked key signs out).
  useEffect(() => {
    if (!session.key()) return;
    api<Whoami>('GET', '/v1/whoami').then(
      (w) => {
        setWho(w);
        setChecking(false);
      },
      () => {
        session.signOut();
        setChecking(false);
      },
    );
  }, []);
  useEffect(() => {
    const expired = () => {
      session.signOut();
      setWho(null);
      setNotice('Your API key is no longer accepted (revoked or expired). Sign in again.');
    };
    window.addEventListener(UNAUTHORIZED, expired);
    return () => window.removeEventListener(UNAUTHORIZED, expired);
  }, []);
  // Focus moves to the page's main region on navigation (not on first load), for keyboard and screen-reader users.
  const [firstPath] = useState(path);
  useEffect(() => {
    if (path !== firstPath) document.getElementById('main')?.focus();
  }, [path]);

  if (checking) return <p role="status">Checking your session…</p>;
  if (!who)
    return (
      <SignIn
        notice={notice}
        onSignedIn={(w) => {
          setNotice(null);
          setWho(w);
        }}
      />
    );
  const signOut = () => {
    session.signOut();
    setWho(null);
  };
  const nav = [
    { href: '/console', label: 'Start', show: true },
    { href: '/console/approvals', label: 'Approvals', show: can(who, 'finance') || can(who, 'approve') },
    { href: '/console/reconciliation', label: 'Reconciliation', show: can(who, 'admin') },
  ];
  return (
    <WhoContext.Provider value={who}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/console">
          Spillway console
        </a>
        <nav aria-label="Main">
          <ul>
            {nav
              .filter((n) => n.show)
              .map((n) => (
                <li key={n.href}>
                  <a href={n.href} aria-current={path === n.href ? 'page' : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
          </ul>
        </nav>
        <div class="who">
          <span title={`key ${who.key_id}`}>
            {who.name ?? 'API key'} · {who.scopes.join(', ')}
            {who.tenant ? ` · tenant ${who.tenant}` : ''}
          </span>
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <Router>
        <Route path="/console" component={HomePage} />
        <Route path="/console/accounts/:id" component={AccountPage} />
        <Route path="/console/decisions/:id" component={DecisionPage} />
        <Route path="/console/approvals" component={ApprovalsPage} />
        <Route path="/console/reconciliation" component={ReconciliationPage} />
        <Route path="/console/reconciliation/:id" component={ReconciliationPage} />
        <Route default component={NotFound} />
      </Router>
    </WhoContext.Provider>
  );
}

render(
  <LocationProvider>
    <Shell />
  </LocationProvider>,
  document.getElementById('app')!,
);
