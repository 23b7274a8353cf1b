/**
 * The operator dashboard in Debian's Chromium (driven by playwright-core) against the real
 * stack: a control plane (etcd, PostgreSQL), a data-plane process and the Stripe simulator.
 * Sign in, issue a key through the form, see the secret once, spend through the data plane,
 * watch the spend and the calls arrive, see a denial live, revoke with confirmation and see the
 * data plane refuse the key. The static route's headers and its refusal of path traversal are
 * checked without a browser, so they run everywhere.
 *
 * Needs `apt-get install chromium` (/usr/bin/chromium); without it the browser tests skip.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CHART_LIBRARY_URL, DASHBOARD_CSP } from '../../control-plane/dashboard/static-route.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { rawRequest } from '../support/raw-http.js';
import { startStripeSimulator, type StripeSimulator } from '../simulators/index.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const SCREENSHOT = '/tmp/keybrake-dashboard.png';
const SECRET = 'sk_test_dashboard_0123456789abcdef';
const LABEL = `browser-run/${Date.now().toString(36)}`;

if (!HAS_CHROMIUM) console.warn(`dashboard browser tests SKIPPED: ${CHROMIUM} is absent (apt-get install chromium)`);

let stack: TestStack;
let cp: TestControlPlane;

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack);
});
afterAll(async () => {
  await cp?.stop();
});

function get(target: string, headers: Record<string, string> = {}, method = 'GET') {
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\n`).join('');
  return rawRequest(cp.running.adminPort, `${method} ${target} HTTP/1.1\nHost: 127.0.0.1\n${extra}Connection: close\n\n`);
}

describe('the dashboard static route', () => {
  it('serves the page at / with a strict CSP, no inline script, and revalidating caching', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toMatch(/^default-src 'self'; script-src 'self'; style-src 'self';/);
    expect(DASHBOARD_CSP).not.toContain('unsafe');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['etag']).toMatch(/^"[\w-]+"$/);
    expect(page.body).toContain('<script type="module" src="/dashboard/js/main.js"></script>');
    // Every script is a file (CSP would refuse an inline one anyway); no inline styles or handlers.
    for (const tag of page.body.match(/<script[^>]*>/g) ?? []) expect(tag).toMatch(/ src="\/dashboard\//);
    expect(page.body).not.toMatch(/ style=| on[a-z]+=/);

    const again = await get('/dashboard/', { 'If-None-Match': page.headers['etag']! });
    expect(again.status).toBe(304);
  });

  it.each([
    ['/dashboard/app.css', 'text/css; charset=utf-8'],
    ['/dashboard/js/main.js', 'text/javascript; charset=utf-8'],
    ['/dashboard/js/views/issue.js', 'text/javascript; charset=utf-8'],
    ['/dashboard/favicon.svg', 'image/svg+xml'],
    [CHART_LIBRARY_URL, 'text/javascript; charset=utf-8'],
  ])('serves %s as %s', async (target, type) => {
    const response = await get(target);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(type);
    expect(response.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(response.body, 'latin1'));
  });

  it('serves the chart library from node_modules byte for byte, gzipped when asked', async () => {
    const file = readFileSync(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));
    const plain = await get(CHART_LIBRARY_URL);
    expect(Buffer.from(plain.body, 'latin1').equals(file)).toBe(true);
    const zipped = await fetch(`${cp.adminUrl}${CHART_LIBRARY_URL}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(zipped.headers.get('content-encoding')).toBe('gzip');
    expect(Buffer.from(await zipped.arrayBuffer()).equals(file)).toBe(true);
  });

  const traversals = [
    '/dashboard/../../package.json',
    '/dashboard/../static-route.ts',
    '/dashboard/%2e%2e/%2e%2e/package.json',
    '/dashboard/%2E%2E/%2E%2E/package.json',
    '/dashboard/..%2f..%2fpackage.json',
    '/dashboard/..%2F..%2F..%2Fpackage.json',
    '/dashboard/%2e%2e%2f%2e%2e%2fpackage.json',
    '/dashboard/%252e%252e/%252e%252e/package.json',
    '/dashboard/..%5c..%5cpackage.json',
    '/dashboard/..\\..\\package.json',
    '/dashboard/....//....//package.json',
    '/dashboard/js/../../../../package.json',
    '/dashboard/vendor/../../../../node_modules/uplot/package.json',
    '/dashboard/vendor/uPlot.esm.js',
    '/dashboard/vendor/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/dashboard//etc/passwd',
    '/dashboard/%2fetc%2fpasswd',
    '/dashboard/static-route.ts',
    '/dashboard/public/index.html',
    '/dashboard/index.html%00.js',
    '/dashboard/js/main.js/',
    '/dashboard/.gitignore',
    '//etc/passwd',
  ];
  it.each(traversals)('refuses %s', async (target) => {
    const response = await get(target);
    expect([400, 404]).toContain(response.status);
    expect(response.body).not.toContain('"devDependencies"');
    expect(response.body).not.toContain('createDashboardRoute');
    expect(response.body).not.toContain('root:x:0');
    expect(response.body).not.toContain('<!doctype html>');
  });

  it('refuses other methods and leaves the JSON API as it was', async () => {
    const post = await get('/dashboard/app.css', {}, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers['allow']).toBe('GET, HEAD');
    const head = await get('/', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect((await cp.http('GET', '/healthz', { token: null })).body).toEqual({ status: 'ok' });
    expect((await cp.http('GET', '/vault/keys', { token: null })).status).toBe(401);
    expect((await cp.http('GET', '/package.json')).status).toBe(404);
  });
});

describe.skipIf(!HAS_CHROMIUM)(
  `the dashboard in Chromium${HAS_CHROMIUM ? '' : ` (SKIPPED: ${CHROMIUM} is absent; apt-get install chromium to run it)`}`,
  () => {
    let sim: StripeSimulator;
    let dp: TestDataPlane;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    let vaultKey = '';
    let keyId = '';
    const problems: string[] = [];

    beforeAll(async () => {
      sim = await startStripeSimulator({ secretKey: SECRET });
      await cp.client.setVendorCredential({ vendor: 'stripe', secret: SECRET, accountSid: '' });
      dp = await startTestDataPlane(stack, cp.grpcAddress, { stripe: sim.url });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
      page = await context.newPage();
      page.setDefaultTimeout(15_000);
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
      });
    });
    afterAll(async () => {
      await context?.close().catch(() => {});
      await browser?.close();
      await dp?.stop();
      await sim?.stop();
    });

    function charge(key = vaultKey, path = '/v1/charges', headers: Record<string, string> = {}) {
      return fetch(`${dp.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: path === '/v1/refunds' ? 'charge=ch_nothing' : 'amount=1500&currency=usd&source=tok_visa',
      });
    }

    it('says clearly when the token is wrong (keyboard only)', async () => {
      await page.goto(`${cp.adminUrl}/`);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      // The token field has focus: type, press Enter.
      await page.keyboard.type('kbo_not_a_real_token_000000000000000000000000');
      await page.keyboard.press('Enter');
      const alert = page.getByRole('alert');
      await alert.filter({ hasText: 'wrong or unknown operator token' }).waitFor();
      expect(await page.getByLabel('Operator token').getAttribute('aria-invalid')).toBe('true');
      expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
    });

    it('signs in with the admin token and lands on the keys page', async () => {
      await page.getByLabel('Operator token').fill(stack.adminToken);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Keys', level: 1 }).waitFor();
      expect(await page.evaluate<string | null>("sessionStorage.getItem('keybrake.operatorToken')")).toBe(stack.adminToken);
      expect(await page.evaluate<number>('localStorage.length')).toBe(0);
    });

    it('shows API errors next to the field, then issues a key and shows its secret exactly once', async () => {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Issue a key' }).click();
      await page.getByRole('heading', { name: 'Issue a key' }).waitFor();
      await page.getByLabel('Vendor').selectOption('stripe');
      await page.getByLabel('Label', { exact: true }).fill(LABEL);
      await page.getByLabel('Allowed endpoints').fill('POST /v1/charges\n');
      await page.getByLabel('Daily cap (USD)').fill('0');
      await page.getByLabel('Expires in').fill('2h');
      await page.getByRole('button', { name: 'Issue key' }).click();

      const cap = page.getByLabel('Daily cap (USD)');
      await page.getByRole('alert').filter({ hasText: 'daily_usd_cap: must be greater than 0' }).waitFor();
      expect(await cap.getAttribute('aria-invalid')).toBe('true');
      const describedBy = (await cap.getAttribute('aria-describedby'))!.split(' ');
      const fieldError = page.locator(`[id="${describedBy.at(-1)}"]`);
      expect(await fieldError.textContent()).toMatch(/^must be greater than 0/);
      expect(await page.evaluate<string | null | undefined>("document.activeElement?.getAttribute('name')")).toBe('daily_usd_cap');

      await cap.fill('100');
      await page.getByRole('button', { name: 'Issue key' }).click();
      await page.getByRole('heading', { name: 'Vault key issued' }).waitFor();
      vaultKey = await page.getByLabel('Vault key', { exact: true }).inputValue();
      expect(vaultKey).toMatch(/^kbv_[0-9A-Za-z]{42}$/);
      keyId = (await page.locator('.secret a.mono').textContent())!;
      expect(keyId).toMatch(/^vk_/);
      expect(await cap.getAttribute('aria-invalid')).toBeNull();

      // The copy button reports what it did (clipboard or select-and-copy).
      await page.getByRole('button', { name: 'Copy' }).click();
      await page.locator('.copy-status').filter({ hasText: /Copied|Ctrl\+C/ }).waitFor();

      // Never again: not after "Done", not on the keys page, not after a reload, not in storage.
      await page.getByRole('button', { name: /^Done/ }).click();
      expect(await page.content()).not.toContain(vaultKey);
      await page.goto(`${cp.adminUrl}/#/keys`);
      await page.locator(`tr[data-key-id="${keyId}"]`).waitFor();
      expect(await page.content()).not.toContain(vaultKey);
      await page.goBack();
      await page.getByRole('heading', { name: 'Issue a key' }).waitFor();
      expect(await page.content()).not.toContain(vaultKey);
      await page.reload();
      await page.getByRole('heading', { name: 'Issue a key' }).waitFor();
      expect(await page.content()).not.toContain(vaultKey);
      const stored = await page.evaluate<string>('JSON.stringify({ ...sessionStorage, ...localStorage }) + document.cookie + location.href');
      expect(stored).not.toContain(vaultKey);

      const listed = await cp.http('GET', `/vault/keys?label=${encodeURIComponent(LABEL)}`);
      expect(listed.body.keys).toHaveLength(1);
      expect(listed.body.keys[0]).toMatchObject({ id: keyId, vendor: 'stripe', cap_micros: 100_000_000, allowed_endpoints: ['POST /v1/charges'] });
    });

    it('shows spend moving on the keys page and the calls with a spend chart on the key page', async () => {
      for (let i = 1; i <= 3; i++) {
        const headers = { 'idempotency-key': `${LABEL}-${i}` };
        let response = await charge(vaultKey, '/v1/charges', headers);
        // The new key's policy reaches the data plane over its stream within milliseconds.
        for (let tries = 0; response.status === 401 && tries < 50; tries++) {
          await new Promise((r) => setTimeout(r, 100));
          response = await charge(vaultKey, '/v1/charges', headers);
        }
        expect(response.status, await response.clone().text()).toBe(200);
      }
      expect(sim.wiretap.requests().filter((r) => r.path === '/v1/charges')).toHaveLength(3);

      await page.goto(`${cp.adminUrl}/#/keys?label=${encodeURIComponent(LABEL)}`);
      const row = page.locator(`tr[data-key-id="${keyId}"]`);
      await row.waitFor();
      expect(await page.getByLabel('Label', { exact: true }).inputValue()).toBe(LABEL);
      // Data planes report spend about once a second; refresh until it shows (bounded).
      await eventually(async () => {
        await page.getByRole('button', { name: 'Refresh', exact: true }).click();
        return (await row.locator('.spend-text').textContent()) === '$45.00 of $100.00';
      }, 20_000);
      expect(await row.locator('meter').getAttribute('data-spent-micros')).toBe('45000000');
      expect(await row.locator('meter').getAttribute('aria-label')).toBe('Spent $45.00 of $100.00 cap (45%)');
      expect(await row.locator('td.remaining').textContent()).toBe('$55.00');
      expect(await row.locator('td.at-risk').textContent()).toBe('$0.00');
      expect(await row.locator('td.expires').textContent()).toMatch(/^in 1h 5\dm$/);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      await row.getByRole('link', { name: keyId }).click();
      await page.getByRole('heading', { name: `Key ${keyId}` }).waitFor();
      const calls = page.locator('table.audit tbody tr');
      await eventually(async () => {
        if ((await calls.count()) >= 3) return true;
        await page.getByRole('button', { name: 'Refresh calls' }).click();
        await page.waitForTimeout(300);
        return false;
      }, 20_000);
      expect(await calls.count()).toBe(3);
      for (const cost of await calls.locator('td.cost').allTextContents()) expect(cost).toBe('$15.00');
      // The vendor's amount as people read it, not Stripe's minor units ("1500 usd").
      for (const amount of await calls.locator('td.amount').allTextContents()) expect(amount).toBe('$15.00');
      expect(await calls.first().locator('td.call').textContent()).toBe('POST /v1/charges');
      await page.locator('.chart-area canvas').first().waitFor();
      await page.locator('.chart-summary').filter({ hasText: '$45.00 spent over 3 allowed calls' }).waitFor();
      expect(await page.content()).not.toContain(vaultKey);

      // Filtering the calls by idempotency key.
      await page.getByLabel('Idempotency key').fill(`${LABEL}-2`);
      await page.getByRole('button', { name: 'Apply' }).click();
      await eventually(async () => (await calls.count()) === 1, 10_000);
      expect(await calls.locator('td.idempotency-key').textContent()).toBe(`${LABEL}-2`);
      await page.getByRole('button', { name: 'Clear' }).click();
      await eventually(async () => (await calls.count()) === 3, 10_000);

      // The run's page: every key with the label, and the same calls.
      await page.locator('.key-details').getByRole('link', { name: LABEL }).click();
      await page.getByRole('heading', { name: `Run ${LABEL}` }).waitFor();
      await page.locator('.totals').filter({ hasText: '1 key (1 active): spent $45.00 of $100.00' }).waitFor();
      await eventually(async () => (await page.locator('table.audit tbody tr').count()) === 3, 10_000);
    });

    it('shows a denial in the live denials view', async () => {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Live denials' }).click();
      await page.getByRole('heading', { name: 'Live denials' }).waitFor();
      const refused = await charge(vaultKey, '/v1/refunds');
      expect(refused.status).toBe(403);
      expect(refused.headers.get('keybrake-error')).toBe('endpoint_not_allowed');
      const row = page.locator('table.denials tbody tr').filter({ hasText: 'endpoint_not_allowed' });
      await row.waitFor({ timeout: 20_000 });
      expect(await row.textContent()).toContain(keyId);
      expect(await row.textContent()).toContain(LABEL);
      expect(await row.textContent()).toContain('POST /v1/refunds');
      expect(await row.locator('td.status').textContent()).toBe('403');
      // Allowed calls never appear there.
      expect(await page.locator('table.denials tbody tr').filter({ hasText: '/v1/charges' }).count()).toBe(0);
    });

    it('revokes after confirmation, updates the table at once, and the data plane refuses the key', async () => {
      await page.goto(`${cp.adminUrl}/#/keys?label=${encodeURIComponent(LABEL)}`);
      const row = page.locator(`tr[data-key-id="${keyId}"]`);
      await row.waitFor();
      await row.getByRole('button', { name: `Revoke key ${keyId}` }).click();
      const dialog = page.getByRole('dialog', { name: 'Revoke this key?' });
      await dialog.waitFor();
      // Cancel (Escape) changes nothing.
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
      expect(await row.locator('.badge').textContent()).toBe('active');
      expect((await charge()).status).toBe(200);

      await row.getByRole('button', { name: `Revoke key ${keyId}` }).click();
      await dialog.getByRole('button', { name: 'Revoke key' }).click();
      await row.locator('.badge').filter({ hasText: 'revoked' }).waitFor({ timeout: 3000 });
      expect(await row.getByRole('button', { name: `Revoke key ${keyId}` }).isHidden()).toBe(true);
      expect(await row.locator('td.expires').textContent()).toBe('revoked');
      await page.getByRole('status').filter({ hasText: `Revoked ${keyId}` }).waitFor();

      let response = await charge();
      for (let tries = 0; response.status !== 401 && tries < 50; tries++) {
        await new Promise((r) => setTimeout(r, 50));
        response = await charge();
      }
      expect(response.status).toBe(401);
      expect(response.headers.get('keybrake-error')).toBe('vault_key_revoked');
      expect((await cp.http('GET', `/vault/keys/${keyId}`)).body.status).toBe('revoked');

      // The status filter now finds it among the revoked keys only.
      await page.getByLabel('Status').selectOption('active');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.getByText('No keys match.').waitFor();
      await page.getByLabel('Status').selectOption('revoked');
      await page.getByRole('button', { name: 'Apply' }).click();
      await row.waitFor();
      expect(page.url()).toContain('status=revoked');
    });

    it("pages a label's keys with the API's cursor, and follows short pages of a filter", async () => {
      const label = 'browser/paging';
      const keySpec = (vendor: string) => ({
        vendor, label, allowedEndpoints: [vendor === 'stripe' ? 'POST /v1/charges' : 'POST /emails'], dailyCapMicros: 1_000_000, budgetMicros: 0, expiresInSeconds: 3600, perCallEstimateMicros: 0,
      });
      // 3 resend keys, then 600 newer stripe keys listed before them: a vendor filter looks at
      // 10 × 50 keys a call, so the first answer holds no key and a cursor, which the dashboard follows.
      await cp.client.issueKeys({ specs: Array.from({ length: 3 }, () => keySpec('resend')) });
      await new Promise((resolve) => setTimeout(resolve, 5));
      await cp.client.issueKeys({ specs: Array.from({ length: 600 }, () => keySpec('stripe')) });
      const firstAnswer = await cp.http('GET', `/vault/keys?label=${encodeURIComponent(label)}&vendor=resend&limit=50`);
      expect(firstAnswer.body.keys).toEqual([]);
      expect(firstAnswer.body.next_cursor).not.toBeNull();
      await page.goto(`${cp.adminUrl}/#/keys?label=${encodeURIComponent(label)}&vendor=resend`);
      await page.locator('.summary').filter({ hasText: /^3 keys · updated/ }).waitFor();
      expect(await page.locator('table.keys tbody tr').count()).toBe(3);
      expect(await page.getByRole('button', { name: 'Load more keys' }).isHidden()).toBe(true);

      await page.goto(`${cp.adminUrl}/#/keys?label=${encodeURIComponent(label)}`);
      await page.locator('.summary').filter({ hasText: /^50 keys \(more available\)/ }).waitFor();
      for (const shown of [100, 150]) {
        await page.getByRole('button', { name: 'Load more keys' }).click();
        await page.locator('.summary').filter({ hasText: new RegExp(`^${shown} keys`) }).waitFor();
      }
      const ids = await page.locator('table.keys tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-key-id')));
      expect(new Set(ids).size).toBe(150);
      const listed = await cp.http('GET', `/vault/keys?label=${encodeURIComponent(label)}&limit=150`);
      expect(ids).toEqual(listed.body.keys.map((k: { id: string }) => k.id));
    });

    it('creates a token, shows its secret once, lists it without the secret, and revokes it after confirmation', async () => {
      await page.getByRole('link', { name: 'Tokens' }).click();
      await page.getByRole('heading', { name: 'Operator tokens', level: 1 }).waitFor();
      await page.getByLabel('Role').selectOption('auditor');
      await page.getByLabel('Name').fill('browser auditor');
      await page.getByRole('button', { name: 'Create token' }).click();
      const secretField = page.getByLabel('Token', { exact: true });
      await secretField.waitFor();
      const secret = await secretField.inputValue();
      expect(secret).toMatch(/^kbo_/);
      expect((await cp.http('GET', '/vault/keys?limit=1', { token: secret })).status).toBe(200);
      const id = ((await cp.http('GET', '/tokens')).body.tokens as { id: string; name: string }[]).find((t) => t.name === 'browser auditor')!.id;
      const row = page.locator(`tr[data-token-id="${id}"]`);
      await row.waitFor();
      expect(await row.textContent()).toContain('auditor');
      expect(await page.locator('table.tokens').textContent()).not.toContain(secret);
      if (process.env['KEYBRAKE_TOKENS_SCREENSHOT'] !== undefined) await page.screenshot({ path: process.env['KEYBRAKE_TOKENS_SCREENSHOT'], fullPage: true });
      await page.getByRole('button', { name: 'Done: hide the token' }).click();
      expect(await page.content()).not.toContain(secret);

      await row.getByRole('button', { name: `Revoke token ${id}` }).click();
      const dialog = page.getByRole('dialog', { name: 'Revoke this token?' });
      await dialog.getByRole('button', { name: 'Revoke token' }).click();
      await row.waitFor({ state: 'detached' });
      await page.getByRole('status').filter({ hasText: `Revoked ${id}` }).waitFor();
      expect((await cp.http('GET', '/vault/keys?limit=1', { token: secret })).status).toBe(401);
    });

    it('signs out, and ran without script errors or CSP violations', async () => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
      expect(problems).toEqual([]);
    });
  },
);

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
