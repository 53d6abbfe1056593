import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Browser, Page, chromium } from 'playwright-core';
import { consoleAssetsDir } from '@spillway/api/console/console-assets';
import { ADMIN, TestStack, eventually, startStack } from './harness';

/** Screenshots of every page, kept as test artifacts (gitignored). */
const ARTIFACTS = join(__dirname, '..', 'test-artifacts', 'console');

/** Debian's chromium (scripts/install-browser.sh installs it; `npm test` exports CHROMIUM_PATH). */
function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      /* try the next name */
    }
  }
  throw new Error('no chromium: run `bash scripts/install-browser.sh` (npm test does)');
}

describe('console: the browser app at /console, driven by Playwright against the real stack', () => {
  let stack: TestStack;
  let browser: Browser;
  let financeKey: string;
  let approverKey: string;
  let account: string;
  let charged: string;
  let denied: string;
  /** Every URL the browser asked for: no key may ever appear in one. */
  const requested: string[] = [];

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  /** A fresh browser tab (fresh session storage) signed in with `key`. */
  async function signedIn(key: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
    const page = await browser.newPage({ viewport });
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(`${stack.url}/console`);
    // Keyboard only: the first Tab reaches the labelled key field, Enter signs in.
    await page.getByLabel('API key').waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.id')).toBe('api-key');
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    // The key sits in this tab's session storage only (and travels only in the Authorization header).
    expect(await page.evaluate('[sessionStorage.length, localStorage.length]')).toEqual([1, 0]);
    return page;
  }

  beforeAll(async () => {
    if (!consoleAssetsDir()) throw new Error('the console is not built: run `npm run build:console` (npm test does)');
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startStack({ settlement: true });
    browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox', '--disable-dev-shm-usage'] });

    await stack.call('PUT', '/v1/features/video.seconds', { unit: 'second', credits_per_unit: '50' });
    await stack.call('PUT', '/v1/plans/console', {
      features: {
        'video.seconds': { windows: [{ name: '5h', limit: 3, seconds: 18000 }], free_tier: { units_per_month: 2 }, overage: 'credits' },
      },
    });
    account = `console-${randomUUID().slice(0, 8)}`;
    expect((await stack.call('PUT', `/v1/accounts/${account}`, { plan: 'console' })).status).toBeLessThan(300);
    financeKey = (await stack.call('POST', '/v1/api-keys', { name: 'alice (finance)', scopes: ['read', 'finance'] })).body.key;
    approverKey = (await stack.call('POST', '/v1/api-keys', { name: 'bob (approver)', scopes: ['read', 'approve'] })).body.key;

    const purchase = await stack.call('POST', '/v1/purchases', { account_id: account, credits: '500', idempotency_key: `p-${account}` });
    expect(purchase.status).toBe(202);
    await eventually(
      async () => ((await stack.call('GET', `/v1/accounts/${account}`)).body.balance === '500.000000' ? true : undefined),
      30_000,
    );
    // 8 units: 3 from the window, 2 free, 3 × 50 credits = 150 (above the approval threshold of 100).
    const first = await stack.call('POST', '/v1/decisions', {
      account_id: account,
      feature: 'video.seconds',
      quantity: 8,
      idempotency_key: 'render-1',
      allow_partial: true,
    });
    expect(first.body).toMatchObject({ outcome: 'allowed', credits_charged: '150.000000', balance: '350.000000' });
    charged = first.body.decision_id;
    // 100 more: the window and free tier are spent, 350 credits buy 7 units, 93 are denied.
    const second = await stack.call('POST', '/v1/decisions', {
      account_id: account,
      feature: 'video.seconds',
      quantity: 100,
      idempotency_key: 'render-2',
      allow_partial: true,
    });
    expect(second.body).toMatchObject({ outcome: 'partial', granted: 7, denied: 93, balance: '0.000000' });
    denied = second.body.decision_id;
    await eventually(async () => {
      const ledger = (await stack.call('GET', `/v1/accounts/${account}/ledger`)).body;
      return ledger.unsettled_decisions === 0 && ledger.balance === '0.000000' ? true : undefined;
    }, 30_000);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('explains a decision over HTTP: each layer, what it had and gave, why the rest was denied, and its settlement', async () => {
    const { status, body } = await stack.call('GET', `/v1/decisions/${denied}`, undefined, financeKey);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      account_id: account,
      outcome: 'partial',
      credits_charged: '350.000000',
      balance_after: '0.000000',
      settlement: { state: 'settled', usage_event_id: denied },
    });
    expect(body.waterfall.layers).toEqual([
      expect.objectContaining({ layer: 'rate_limit', asked: 100, had: 0, had_exact: true, gave: 0 }),
      expect.objectContaining({ layer: 'free_tier', asked: 100, had: 0, had_exact: true, gave: 0 }),
      expect.objectContaining({ layer: 'credits', asked: 100, had: 7, had_credits: '350.000000', gave: 7, credits: '350.000000' }),
    ]);
    expect(body.waterfall.denied_because).toMatch(/covered only 7 units/);
    expect(body.settlement.monetization_event_id).toEqual(expect.any(String));
    expect(body.settlement.balance_update_ids.length).toBeGreaterThan(0);
    // The same decision by its idempotency key; unknown ids and malformed input answer 404 / 400.
    expect((await stack.call('GET', `/v1/decisions?account_id=${account}&idempotency_key=render-2`)).body.decision_id).toBe(denied);
    expect((await stack.call('GET', '/v1/decisions/dec_p0_00000000000000000000000000000000')).status).toBe(404);
    expect((await stack.call('GET', '/v1/decisions/..%2F..%2Fetc')).status).toBe(404);
    expect((await stack.call('GET', `/v1/decisions?account_id=${account}&idempotency_key=a%00b`)).status).toBe(400);
    expect((await stack.call('GET', `/v1/accounts/${account}/usage?bucket=minute`)).status).toBe(400);
    const usage = (await stack.call('GET', `/v1/accounts/${account}/usage?bucket=hour`)).body;
    expect(usage.points.reduce((sum: number, p: { units: number }) => sum + p.units, 0)).toBe(15);
    expect(usage.points.reduce((sum: number, p: { credits: string }) => sum + Number(p.credits), 0)).toBe(500);
    expect((await stack.call('GET', '/v1/accounts/nobody-here/usage')).status).toBe(404);
    expect((await stack.call('GET', '/v1/whoami', undefined, 'sw_not_a_key')).status).toBe(401);
    expect((await stack.call('GET', '/v1/whoami', undefined, financeKey)).body).toMatchObject({
      name: 'alice (finance)',
      tenant: 'default',
      scopes: ['read', 'finance'],
    });
  });

  it("keeps every console endpoint within the key's tenant: another tenant gets 404 and an empty queue", async () => {
    const other = (
      await stack.call('POST', '/v1/api-keys', { name: 'other team', scopes: ['read', 'finance', 'approve'], tenant: 'other-team' })
    ).body.key;
    expect((await stack.call('GET', `/v1/decisions/${charged}`, undefined, other)).status).toBe(404);
    expect((await stack.call('GET', `/v1/decisions?account_id=${account}&idempotency_key=render-1`, undefined, other)).status).toBe(404);
    expect((await stack.call('GET', `/v1/accounts/${account}/usage`, undefined, other)).status).toBe(404);
    const waiting = await stack.call(
      'POST',
      '/v1/adjustments',
      { account_id: account, credits: '-200', reason: 'tenant check', idempotency_key: `t-${account}` },
      financeKey,
    );
    expect(waiting.status).toBe(202);
    const mine = await eventually(async () => {
      const { body } = await stack.call('GET', '/v1/approvals', undefined, financeKey);
      return body.items.find((i: { workflow_id: string }) => i.workflow_id === waiting.body.workflow_id);
    });
    expect(mine).toMatchObject({
      account_id: account,
      credits: '-200.000000',
      reason: 'tenant check',
      requested_by: 'alice (finance)',
      operation: 'adjustment',
    });
    expect((await stack.call('GET', '/v1/approvals', undefined, other)).body.items).toEqual([]);
    expect(
      (
        await stack.call(
          'POST',
          `/v1/approvals/${encodeURIComponent(waiting.body.workflow_id)}`,
          { approve: false, note: 'test done' },
          approverKey,
        )
      ).status,
    ).toBe(202);
    const decideKey = (await stack.call('POST', '/v1/api-keys', { name: 'decide only', scopes: ['decide'] })).body.key;
    expect((await stack.call('GET', '/v1/approvals', undefined, decideKey)).status).toBe(403);
  });

  it('explains a hold while it is held, and an all-or-nothing denial found by its idempotency key', async () => {
    const other = `console-${randomUUID().slice(0, 8)}`;
    await stack.call('PUT', `/v1/accounts/${other}`, { plan: 'console' });
    const hold = await stack.call('POST', '/v1/decisions', {
      account_id: other,
      feature: 'video.seconds',
      quantity: 1,
      idempotency_key: 'h-1',
      mode: 'reserve',
    });
    expect(hold.body.outcome).toBe('allowed');
    const held = (await stack.call('GET', `/v1/decisions/${hold.body.decision_id}`, undefined, financeKey)).body;
    expect(held).toMatchObject({ mode: 'reserve', hold: { state: 'held', units: 1 }, settlement: { state: 'held' } });
    // 2 window units and 2 free units are left, no credits: 10 all-or-nothing is denied whole.
    const none = await stack.call('POST', '/v1/decisions', {
      account_id: other,
      feature: 'video.seconds',
      quantity: 10,
      idempotency_key: 'big-1',
      allow_partial: false,
    });
    expect(none.body).toMatchObject({ outcome: 'denied', granted: 0 });
    const explained = (await stack.call('GET', `/v1/decisions?account_id=${other}&idempotency_key=big-1`, undefined, financeKey)).body;
    expect(explained).toMatchObject({ decision_id: none.body.decision_id, outcome: 'denied', settlement: { state: 'nothing_to_settle' } });
    expect(explained.waterfall).toMatchObject({ requested: 10, allow_partial: false, granted: 0 });
    expect(explained.waterfall.layers[0]).toMatchObject({
      layer: 'rate_limit',
      asked: 10,
      had: null,
      gave: 0,
      note: 'not used: the request was all-or-nothing',
    });
    expect(explained.waterfall.layers[2]).toMatchObject({ layer: 'credits', had: 0, had_credits: '0.000000' });
    expect(explained.waterfall.denied_because).toMatch(/allow_partial was false/);
    expect((await stack.call('GET', `/v1/decisions?account_id=${other}&idempotency_key=never-used`)).status).toBe(404);
    // Found right after it is decided, settled or not yet (then from the stream past the cursor).
    const fresh = await stack.call('POST', '/v1/decisions', {
      account_id: other,
      feature: 'video.seconds',
      quantity: 1,
      idempotency_key: 'fresh-1',
    });
    const found = (await stack.call('GET', `/v1/decisions/${fresh.body.decision_id}`, undefined, financeKey)).body;
    expect(found).toMatchObject({ decision_id: fresh.body.decision_id, outcome: 'allowed', waterfall: { requested: 1, granted: 1 } });
    expect(['pending', 'settled']).toContain(found.settlement.state);
    expect((await stack.call('GET', '/v1/reconciliations', undefined, financeKey)).status).toBe(403);
  });

  it('signs in, shows the balance, chart and ledger, refunds a decision, approves it with a second key, and the ledger changes', async () => {
    const signIn = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await signIn.goto(`${stack.url}/console`);
    await signIn.getByLabel('API key').fill('sw_wrong_key');
    await signIn.getByRole('button', { name: 'Sign in' }).click();
    await expect(signIn.getByRole('alert').textContent()).resolves.toBe('This API key is not accepted. Sign in again with a valid key.');
    await shot(signIn, 'sign-in');
    await signIn.close();

    const alice = await signedIn(financeKey);
    await alice.getByLabel('Account id', { exact: true }).first().fill(account);
    await alice.getByRole('button', { name: 'Open account' }).click();
    await alice.waitForURL(`**/console/accounts/${account}`);
    await expect(alice.getByTestId('balance').textContent()).resolves.toContain('0 credits');
    await alice.getByTestId('usage-chart').locator('canvas').waitFor();
    await alice.getByTestId('ledger').waitFor();
    expect(await alice.getByTestId('ledger').locator('tbody tr').count()).toBe(3); // the purchase and one debit per decision (one lot)
    await shot(alice, 'account');

    // From the ledger row of the first decision to its explanation.
    await alice.locator(`a[href="/console/decisions/${charged}"]`).first().click();
    await alice.waitForURL(`**/console/decisions/${charged}`);
    await expect(alice.getByTestId('settlement-state').textContent()).resolves.toBe('Settled');
    await expect(alice.getByTestId('waterfall').locator('li.gave').count()).resolves.toBe(3);
    await shot(alice, 'decision');
    await alice.getByLabel('Reason').fill('render failed');
    await alice.getByRole('button', { name: 'Request refund' }).click();
    await alice.getByText('waiting for approval by a second person').waitFor({ timeout: 20_000 });

    // Four eyes: a second key approves it from the queue.
    const bob = await signedIn(approverKey);
    await bob.getByRole('link', { name: 'Approvals' }).click();
    const item = bob.getByTestId('approval').filter({ hasText: account }).filter({ hasText: 'refund of' });
    await item.waitFor({ timeout: 20_000 });
    await expect(item.textContent()).resolves.toContain('150');
    await shot(bob, 'approvals');
    await item.getByRole('button', { name: 'Approve' }).focus();
    await bob.keyboard.press('Enter');
    await item.getByText('Approved.').waitFor();

    await alice.goto(`${stack.url}/console/accounts/${account}`);
    await eventually(
      async () => {
        await alice.getByRole('button', { name: 'Refresh' }).first().click();
        const text = await alice.getByTestId('balance').textContent();
        return text?.includes('150 credits') ? true : undefined;
      },
      30_000,
      500,
    );
    await alice.getByTestId('ledger').getByRole('cell', { name: 'Refund', exact: true }).waitFor();
    await expect(alice.getByTestId('ledger').textContent()).resolves.toContain('+150');
    await shot(alice, 'account-after-refund');

    // Finance forms: a purchase goes through; bad input is refused in plain words, before or by the API.
    await alice.locator('#purchase-credits').fill('25');
    await alice.getByRole('button', { name: 'Buy credits' }).click();
    await alice
      .locator('form[aria-labelledby="purchase-title"]')
      .getByText(/: done/)
      .waitFor({ timeout: 20_000 });
    await eventually(
      async () => ((await alice.getByTestId('balance').textContent())?.includes('175 credits') ? true : undefined),
      20_000,
      250,
    );
    await alice.locator('#adjustment-credits').fill('abc');
    await alice.locator('#adjustment-reason').fill('typo');
    await alice.getByRole('button', { name: 'Adjust balance' }).click();
    await expect(alice.locator('form[aria-labelledby="adjustment-title"]').getByRole('alert').textContent()).resolves.toBe(
      'Credits must be a non-zero signed number with up to 6 decimal places (negative takes credits away).',
    );
    await alice.locator('#promo-credits').fill('5');
    await alice.locator('#promo-expires').fill('2020-01-01T00:00');
    await alice.locator('#promo-reason').fill('too late');
    await alice.getByRole('button', { name: 'Grant promo credits' }).click();
    const refused = await alice.locator('form[aria-labelledby="promo-title"]').getByRole('alert').textContent();
    expect(refused).toMatch(/^This cannot be done\. /);
    expect(refused).not.toMatch(/[{}"]/);
    // What docs/console.png shows (the README's screenshot): the first screen of the account page.
    await alice.screenshot({ path: join(ARTIFACTS, 'account-1280x800.png') });

    // Plain words for API errors, never raw JSON.
    await alice.goto(`${stack.url}/console/accounts/not-an-account`);
    await expect(alice.getByRole('alert').textContent()).resolves.toBe(
      'Not found, or not visible to this API key. Account not-an-account not found.',
    );
    await alice.close();
    await bob.close();
  }, 120_000);

  it('is readable on a narrow screen, and shows reconciliation to an admin', async () => {
    const phone = await signedIn(financeKey, { width: 390, height: 844 });
    await phone.goto(`${stack.url}/console/accounts/${account}`);
    await phone.getByTestId('ledger').waitFor();
    // Nothing wider than the screen but the tables, which scroll in their own box.
    expect(await phone.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await shot(phone, 'account-narrow');
    await phone.goto(`${stack.url}/console/decisions/${denied}`);
    await phone.getByText('Why the rest was denied').waitFor();
    await shot(phone, 'decision-narrow');
    await phone.close();

    // A key revoked while signed in: the next call signs the tab out, saying why.
    const temp = (await stack.call('POST', '/v1/api-keys', { name: 'temporary', scopes: ['read'] })).body;
    const revoked = await signedIn(temp.key);
    expect((await stack.call('DELETE', `/v1/api-keys/${temp.id}`)).status).toBe(200);
    await eventually(async () => ((await stack.call('GET', '/v1/whoami', undefined, temp.key)).status === 401 ? true : undefined));
    await revoked.getByLabel('Account id', { exact: true }).first().fill(account);
    await revoked.getByRole('button', { name: 'Open account' }).click();
    await revoked.getByText('Your API key is no longer accepted (revoked or expired). Sign in again.').waitFor();
    expect(await revoked.evaluate('sessionStorage.length')).toBe(0);
    await revoked.close();

    const admin = await signedIn(ADMIN);
    await admin.getByRole('link', { name: 'Reconciliation' }).click();
    await admin.getByRole('button', { name: 'Start a run now' }).click();
    await admin.waitForURL('**/console/reconciliation/reconciliation-*');
    await eventually(
      async () => {
        await admin.getByRole('button', { name: 'Refresh' }).first().click();
        return (await admin.locator('#report-heading').count()) > 0 && (await admin.getByText('Status completed').count()) > 0
          ? true
          : undefined;
      },
      60_000,
      1000,
    );
    await admin.locator('table a[href^="/console/reconciliation/reconciliation-"]').first().waitFor();
    await shot(admin, 'reconciliation');
    await admin.close();
  }, 120_000);

  it('serves the app for every /console path and says so when a key is missing', async () => {
    const page = await fetch(`${stack.url}/console/decisions/anything`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<div id="app">');
    expect(existsSync(join(ARTIFACTS, 'account.png'))).toBe(true);
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((u) => [financeKey, approverKey, ADMIN].some((k) => u.includes(k)))).toEqual([]);
  });

  it('ships no source maps: none built, none referenced, none served', async () => {
    expect(readdirSync(join(consoleAssetsDir()!, 'assets')).filter((name) => name.endsWith('.map'))).toEqual([]);
    const index = await (await fetch(`${stack.url}/console/`)).text();
    const script = /src="\/console\/(assets\/[^"]+\.js)"/.exec(index)?.[1];
    expect(script).toBeDefined();
    const js = await fetch(`${stack.url}/console/${script}`);
    expect(js.status).toBe(200);
    expect(await js.text()).not.toContain('sourceMappingURL');
    expect((await fetch(`${stack.url}/console/${script}.map`)).status).toBe(404);
  });

  it('refuses a query parameter given in array form or twice with a 400 naming it, on every route', async () => {
    const cases: [string, string][] = [
      [`/v1/accounts/${account}/usage?bucket[]=hour`, 'bucket'],
      [`/v1/accounts/${account}/usage?bucket[0]=hour`, 'bucket'],
      [`/v1/accounts/${account}/usage?bucket=hour&bucket=day`, 'bucket'],
      [`/v1/accounts/${account}/ledger?cursor[]=1`, 'cursor'],
      [`/v1/decisions?account_id[]=${account}&idempotency_key=render-2`, 'account_id'],
      [`/v1/decisions?account_id=${account}&idempotency_key=render-2&idempotency_key=render-1`, 'idempotency_key'],
      ['/v1/audit-log?limit[]=5', 'limit'],
      ['/v1/settlement?x[]=1', 'x'],
    ];
    for (const [path, field] of cases) {
      const { status, body } = await stack.call('GET', path);
      expect([path, status, body.error?.details]).toEqual([path, 400, [{ field, issue: expect.any(String) }]]);
    }
    expect((await stack.call('GET', `/v1/accounts/${account}/usage?bucket=hour`)).status).toBe(200);
  });
});
