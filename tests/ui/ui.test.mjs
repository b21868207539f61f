// Browser tests of the web UI against a running gateway (see harness.mjs and README.md). One gateway serves the
// whole file; the tests run in order and build on each other (an account added here is logged in, used and removed
// below), as a user's session would.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { startEnvironment, sendMessages, ACCOUNT_KEY } from './harness.mjs';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PAGES = [['overview', 'Overview'], ['accounts', 'Accounts'], ['keys', 'Client keys'], ['requests', 'Requests'], ['usage', 'Usage'], ['settings', 'Settings']];
const WAIT = 30000; // generous: the machines running this are often busy compiling

let env;
let browser;
let context;
let page;
let artifacts;
const foreignRequests = [];
const cspViolations = [];
const pageErrors = [];

/** A browser context that records CSP violations, page errors and every request that leaves the gateway's origin. */
async function newContext(options = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  ctx.setDefaultTimeout(WAIT);
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`));
  });
  ctx.on('page', watch);
  return ctx;
}

function watch(p) {
  const origin = new URL(env.url).origin;
  p.on('request', (r) => {
    // The OAuth popup goes to the (mock) authorize page by design; it is the only page allowed to leave.
    if (p.__authorizePopup) return;
    const url = r.url();
    let o;
    try {
      o = new URL(url).origin;
    } catch {
      o = 'unparsable';
    }
    if (o !== origin) foreignRequests.push(url);
  });
  p.on('console', (m) => {
    if (/content security policy|CSP violation/i.test(m.text())) cspViolations.push(m.text());
  });
  p.on('pageerror', (e) => pageErrors.push(e.message));
}

async function until(what, check, ms = WAIT) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function go(route) {
  await page.evaluate((r) => { location.hash = `#/${r}`; }, route);
  const title = PAGES.find(([r]) => r === route)[1];
  await page.locator('main h1', { hasText: title }).waitFor({ timeout: WAIT });
}

const card = (name) => page.locator(`li.account[data-account="${name}"]`);


/**
 * Presses Tab (at most 80 times) until the focused element is `name` (its aria-label, label or text), optionally
 * inside `within` (a CSS selector); then checks the focus is visible (an outline from :focus-visible).
 */
async function tabTo(name, within) {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    const hit = await page.evaluate(([n, w]) => {
      const el = document.activeElement;
      if (!el || el === document.body) return false;
      const label = el.getAttribute('aria-label') || (el.labels && el.labels[0] && el.labels[0].textContent) || el.textContent || '';
      return label.replace(/\s+/g, ' ').trim() === n && (!w || !!el.closest(w));
    }, [name, within]);
    if (hit) {
      const outline = await page.evaluate(() => {
        const style = getComputedStyle(document.activeElement);
        return { matches: document.activeElement.matches(':focus-visible'), style: style.outlineStyle, width: parseFloat(style.outlineWidth) };
      });
      assert.ok(outline.matches && outline.style !== 'none' && outline.width >= 2, `focus on "${name}" is not visible: ${JSON.stringify(outline)}`);
      return;
    }
  }
  throw new Error(`Tab never reached "${name}"${within ? ` in ${within}` : ''}`);
}

async function axeScan(where, target = page) {
  await target.evaluate(AXE_SOURCE);
  const result = await target.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }));
  if (process.env.UI_TEST_AXE_VERBOSE) console.log(`# axe ${where}: ${result.passes.length} rules passed, ${result.violations.length} violations (${result.violations.map((v) => `${v.id}:${v.impact}`).join(' ')})`);
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${where}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`), []);
}

before(async () => {
  artifacts = process.env.UI_TEST_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'llm-gateway-ui-artifacts-'));
  fs.mkdirSync(artifacts, { recursive: true });
  console.log(`# artifacts (screenshots, logs): ${artifacts}`);
  env = await startEnvironment();
  console.log(`# testing the gateway at ${env.url} (workdir ${env.workdir})`);
  // Playwright gives every launch a fresh, temporary --user-data-dir.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  context = await newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.url });
  page = await context.newPage();
});

after(async () => {
  if (browser) await browser.close();
  if (env) {
    for (const log of env.logs) if (fs.existsSync(log)) fs.copyFileSync(log, path.join(artifacts, path.basename(log)));
    await env.close();
  }
  console.log(`# artifacts (screenshots, logs): ${artifacts}`);
});

test('signing in with a one-time code takes it out of the address bar, and a used code is refused', async () => {
  const code = await env.mintCode();
  await page.goto(`${env.url}/ui/#code=${encodeURIComponent(code)}`);
  await page.locator('main h1', { hasText: 'Overview' }).waitFor({ timeout: WAIT });
  assert.ok(!page.url().includes(code), `the code is still in the address bar: ${page.url()}`);

  const other = await newContext();
  const p2 = await other.newPage();
  await p2.goto(`${env.url}/ui/#code=${encodeURIComponent(code)}`);
  await p2.getByRole('heading', { name: 'Sign in to LLM Gateway' }).waitFor({ timeout: WAIT });
  assert.match(await p2.locator('[role=alert]').first().textContent(), /not accepted/);
  assert.match(await p2.locator('main').textContent(), /llm-gateway ui/);
  await axeScan('sign-in page', p2);
  await p2.screenshot({ path: path.join(artifacts, 'signin-1280x800-light.png') });

  // The paste-a-code field, with the whole address pasted as `llm-gateway ui --no-browser` prints it.
  const fresh = await env.mintCode();
  await p2.getByLabel('Sign-in code').fill(`${env.url}/ui/#code=${fresh}`);
  await p2.getByRole('button', { name: 'Sign in' }).click();
  await p2.locator('main h1', { hasText: 'Overview' }).waitFor({ timeout: WAIT });
  await other.close();
});

test('an API-key account is added through a masked field, by keyboard', async () => {
  await go('accounts');
  const add = page.getByRole('button', { name: 'Add account' });
  await add.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Add an account' });
  await dialog.waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Add account', 'focus returns to the opener');

  await add.click();
  await dialog.getByLabel('Name', { exact: true }).fill('primary');
  const key = dialog.getByLabel('API key', { exact: true });
  assert.equal(await key.getAttribute('type'), 'password');
  await key.fill(ACCOUNT_KEY);
  await dialog.getByRole('button', { name: 'Add account' }).click();
  await dialog.waitFor({ state: 'detached', timeout: WAIT });
  await card('primary').locator('.badge[data-state="active"]').waitFor({ timeout: WAIT });
  const config = env.readConfig();
  assert.match(config, /primary/);
  assert.ok(!config.includes(ACCOUNT_KEY), 'the API key must not be written to the config file');
});

test('logging in with Claude through the authorize page turns the account active without a reload', async () => {
  await go('accounts');
  await page.evaluate(() => { window.__noReload = true; });
  await page.getByRole('button', { name: 'Add account' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add an account' });
  await dialog.getByLabel('Claude Pro/Max login').check();
  await dialog.getByLabel('Name', { exact: true }).fill('claude-max');
  const popupPromise = context.waitForEvent('page', { timeout: WAIT });
  await dialog.getByRole('button', { name: 'Add and log in' }).click();
  const popup = await popupPromise;
  popup.__authorizePopup = true;
  // The mock's authorize page approves at once and redirects to the gateway's loopback /callback.
  await popup.waitForLoadState('load', { timeout: WAIT });
  await until('the callback page', async () => /\/callback/.test(popup.url()) && /Login complete/i.test(await popup.locator('body').textContent()));
  await card('claude-max').locator('.badge[data-state="active"]').waitFor({ timeout: WAIT });
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was reloaded');

  // The callback page is useful in a plain browser (close the tab) and names the account in the desktop app's link.
  assert.match(await popup.locator('main').textContent(), /You can close this tab/);
  const { accounts } = await env.admin('GET', '/accounts');
  const id = accounts.find((a) => a.name === 'claude-max').id;
  assert.equal(await popup.getByRole('link', { name: 'Open it in the app' }).getAttribute('href'), `llm-gateway://oauth/done?account=${id}`);
  await axeScan('login callback page', popup);
  await popup.screenshot({ path: path.join(artifacts, 'callback-login-complete.png') });
  await popup.close();
});

test('the overview shows whether Claude Code uses this gateway, and Set up / Restore change its settings file', async () => {
  await go('overview');
  const section = page.locator('section[aria-labelledby="cc-title"]');
  await section.locator('[data-claude-code="elsewhere"]').waitFor({ timeout: WAIT });
  assert.match(await section.textContent(), /Does not use this gateway/);
  assert.ok(!fs.existsSync(env.claudeSettingsPath), 'no Claude Code settings before the setup');

  await section.getByRole('button', { name: 'Set up Claude Code' }).click();
  await section.locator('[data-claude-code="uses-gateway"]').waitFor({ timeout: WAIT });
  await section.locator('.report', { hasText: 'now uses this gateway' }).waitFor({ timeout: WAIT });
  const settings = JSON.parse(fs.readFileSync(env.claudeSettingsPath, 'utf8'));
  assert.equal(settings.env.ANTHROPIC_BASE_URL, env.url);
  assert.ok(settings.apiKeyHelper, 'Claude Code gets its key from the gateway');
  assert.match(await section.textContent(), new RegExp(`Base URL.*${env.url.replace(/[.]/g, '\\.')}.*user settings`));
  await page.screenshot({ path: path.join(artifacts, 'overview-claude-code-set-up-1280x800-light.png') });

  await section.getByRole('button', { name: 'Restore its settings' }).click();
  await section.locator('[data-claude-code="elsewhere"]').waitFor({ timeout: WAIT });
  await section.locator('.report', { hasText: 'exactly as it was' }).waitFor({ timeout: WAIT });
  assert.ok(!fs.existsSync(env.claudeSettingsPath), 'restore leaves no settings file where there was none');
  assert.equal(await section.getByRole('button', { name: 'Restore its settings' }).isDisabled(), true);
});

test('requests sent with the anthropic SDK appear live in Requests and in Usage', async (t) => {
  await go('requests');
  await page.evaluate(() => { window.__noReload = true; });
  const rows = page.locator('table.requests tbody tr');
  const before = await rows.count();
  const statuses = await sendMessages(env, 3);
  assert.deepEqual(statuses, [200, 200, 200]);
  await until('three new rows', async () => (await rows.count()) >= before + 3);
  assert.match(await rows.first().textContent(), /Anthropic SDK/);
  assert.match(await rows.first().textContent(), /200/);

  // The detail view: attempts, closed with Escape.
  const account = (await rows.first().locator('td').nth(3).textContent()).trim();
  assert.ok(['primary', 'claude-max'].includes(account), `the row names the account that answered: ${account}`);
  await rows.first().getByRole('button').click();
  const detail = page.getByRole('dialog', { name: 'Request details' });
  await detail.waitFor();
  assert.match(await detail.textContent(), /Attempts/);
  assert.ok((await detail.textContent()).includes(account), 'the details name the account that answered');
  await axeScan('request details dialog');
  await page.keyboard.press('Escape');
  await detail.waitFor({ state: 'detached' });

  await go('usage');
  const stat = page.locator('[data-stat="requests"]');
  await stat.waitFor({ timeout: WAIT });
  const count = async () => Number((await stat.textContent()).replace(/[^\d]/g, ''));
  const shown = await count();
  assert.ok(shown >= 3, `usage shows ${shown} requests`);
  // The chart has its own query (by hour), which may answer after the totals.
  await until('the usage chart is drawn', async () => (await page.locator('.chart canvas').count()) > 0);
  await sendMessages(env, 2);
  await until('usage to count the new requests', async () => (await count()) >= shown + 2);
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was reloaded');
});

test('a 429 from the upstream shows a live cooldown countdown on the account', async () => {
  await go('accounts');
  // With the other account disabled (through its card), the 429 reaches the client instead of failing over.
  await card('claude-max').getByRole('button', { name: 'Disable' }).click();
  await card('claude-max').locator('.badge[data-state="disabled"]').waitFor({ timeout: WAIT });
  await card('claude-max').getByRole('button', { name: 'Enable' }).waitFor({ timeout: WAIT });
  const reset = new Date(Date.now() + 120000).toISOString().replace(/\.\d+Z$/, 'Z');
  await env.enqueue({
    kind: 'response',
    status: 429,
    headers: [['retry-after', '120'], ['anthropic-ratelimit-requests-limit', '50'], ['anthropic-ratelimit-requests-remaining', '0'], ['anthropic-ratelimit-requests-reset', reset]],
    body: JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'Number of requests has exceeded your rate limit' } }),
  });
  const statuses = await sendMessages(env, 1);
  assert.deepEqual(statuses, [429]);
  const badge = card('primary').locator('.badge');
  await until('the cooling-down badge', async () => /Cooling down · \d+m \d{2}s/.test(await badge.textContent()));
  const first = await badge.textContent();
  await until('the countdown to tick', async () => (await badge.textContent()) !== first && /Cooling down/.test(await badge.textContent()));
});

test('a client key is created with limits, copied once, and revoked after confirming', async () => {
  await go('keys');
  await page.getByRole('button', { name: 'Create key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a client key' });
  await dialog.getByLabel('Name', { exact: true }).fill('ui-test-key');
  await dialog.getByLabel('Requests per minute').fill('60');
  await dialog.getByRole('button', { name: 'Create key' }).click();
  const shown = page.getByRole('dialog', { name: /Key .*created/ });
  await shown.waitFor({ timeout: WAIT });
  await axeScan('key created dialog');
  const key = await shown.getByLabel('Client key', { exact: true }).inputValue();
  assert.match(key, /^lgw-/);
  await shown.getByRole('button', { name: 'Copy the new client key' }).click();
  await until('the copy confirmation', async () => /Copied/.test(await shown.textContent()));
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
  await shown.getByRole('button', { name: 'Done' }).click();
  const row = page.locator('tr[data-key="ui-test-key"]');
  await row.waitFor({ timeout: WAIT });
  assert.match(await row.textContent(), /60\/min/);
  assert.ok(!env.readConfig().includes(key), 'the key itself must not be in the config file');

  await row.getByRole('button', { name: /Revoke/ }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke ui-test-key?' });
  await confirm.waitFor();
  await axeScan('revoke confirmation dialog');
  await confirm.getByRole('button', { name: 'Revoke ui-test-key' }).click();
  await row.waitFor({ state: 'detached', timeout: WAIT });
  assert.deepEqual(await sendMessages(env, 1, key), [401]);
});

test("Claude Code on its own login shows up under the accounts, with its plan windows, never as a stored account", async () => {
  const token = 'sk-ant-oat01-ui-test-own-login-token';
  const response = await fetch(`${env.url}/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', 'anthropic-version': '2023-06-01',
      'anthropic-beta': 'claude-code-20250219,oauth-2025-04-20', 'user-agent': 'claude-cli/2.1.0 (external, cli)',
      'x-app': 'cli', authorization: `Bearer ${token}`, 'x-llm-gateway-key': env.sdkKey,
    },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(response.status, 200, await response.text());
  await go('accounts');
  const own = page.locator('[data-own-login^="Claude Code login"]');
  await own.first().waitFor({ timeout: WAIT });
  assert.match(await own.first().textContent(), /Claude Code login ·[0-9a-f]{4}/);
  assert.equal(await card('Claude Code login').count(), 0, 'not a stored account card');
  assert.ok(!(await page.content()).includes(token), 'the token is nowhere on the page');
  await go('overview');
  await page.locator('.account-windows [data-account^="Claude Code login"]').first().waitFor({ timeout: WAIT });
});

test('an account is removed only after a confirmation that names it', async () => {
  await go('accounts');
  await card('claude-max').getByRole('button', { name: 'Remove' }).click();
  const confirm = page.getByRole('dialog', { name: 'Remove claude-max?' });
  await confirm.waitFor();
  assert.match(await confirm.textContent(), /claude-max/);
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'detached' });
  assert.equal(await card('claude-max').count(), 1);

  await card('claude-max').getByRole('button', { name: 'Remove' }).click();
  await page.getByRole('dialog', { name: 'Remove claude-max?' }).getByRole('button', { name: 'Remove claude-max' }).click();
  await card('claude-max').waitFor({ state: 'detached', timeout: WAIT });
  await until('the config file to lose the account', async () => !env.readConfig().includes('claude-max'));
});

test('a settings change is validated, reaches the config file and takes effect', async () => {
  await go('settings');
  const listen = page.getByLabel('Listen address');
  const original = await listen.inputValue();
  await listen.fill('not an address');
  await page.getByRole('button', { name: 'Save changes' }).click();
  const fieldError = page.locator('#set-server-listen-error');
  await fieldError.waitFor({ timeout: WAIT });
  assert.ok((await fieldError.textContent()).length > 0);
  assert.ok(!env.readConfig().includes('not an address'), 'an invalid change must not be written');
  await listen.fill(original);

  await page.getByLabel('Routing strategy').selectOption('weighted');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('p.notice', { hasText: 'Saved' }).waitFor({ timeout: WAIT });
  await until('the config file to say weighted', async () => /strategy["']?\s*:\s*["']?weighted/.test(env.readConfig()));
  const status = await page.evaluate(() => fetch('/admin/api/v1/status', { credentials: 'same-origin' }).then((r) => r.json()));
  assert.equal(status.strategy, 'weighted');
});

test('the main flows work by keyboard alone, with a visible focus: pages, a client key, an account', async () => {
  await go('overview');
  await page.reload(); // focus starts at the top of the page, as after opening it
  await page.locator('main h1', { hasText: 'Overview' }).waitFor({ timeout: WAIT });
  await tabTo('Skip to content');
  const headingFocused = async (title) => {
    await page.locator('main h1', { hasText: title }).waitFor({ timeout: WAIT });
    await until(`focus on the ${title} heading`, () => page.evaluate((t) => document.activeElement.tagName === 'H1' && document.activeElement.textContent === t, title));
  };

  // A client key: create (Enter submits the form), copy, done; then revoke after confirming.
  await tabTo('Client keys', 'nav');
  await page.keyboard.press('Enter');
  await headingFocused('Client keys');
  await tabTo('Create key', 'main');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog', { name: 'Create a client key' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'key-name', 'the dialog starts on its first field');
  await page.keyboard.type('kbd-key');
  await page.keyboard.press('Enter');
  const created = page.getByRole('dialog', { name: 'Key kbd-key created' });
  await created.waitFor({ timeout: WAIT });
  await tabTo('Copy the new client key', 'dialog');
  await page.keyboard.press('Enter');
  await until('the copy confirmation', async () => /Copied/.test(await created.textContent()));
  await tabTo('Done', 'dialog');
  await page.keyboard.press('Enter');
  await created.waitFor({ state: 'detached' });
  const row = page.locator('tr[data-key="kbd-key"]');
  await row.waitFor({ timeout: WAIT });
  await tabTo('Revoke kbd-key', 'tr[data-key="kbd-key"]');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog', { name: 'Revoke kbd-key?' }).waitFor();
  await tabTo('Revoke kbd-key', 'dialog');
  await page.keyboard.press('Enter');
  await row.waitFor({ state: 'detached', timeout: WAIT });

  // An account: add through the dialog (one tab stop for the kind, then the fields), then remove after confirming.
  await tabTo('Accounts', 'nav');
  await page.keyboard.press('Enter');
  await headingFocused('Accounts');
  await tabTo('Add account', 'main');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog', { name: 'Add an account' }).waitFor();
  await tabTo('Name', 'dialog');
  await page.keyboard.type('kbd-account');
  await tabTo('API key', 'dialog');
  await page.keyboard.type('sk-ant-api03-good-keyboard');
  await page.keyboard.press('Enter');
  await card('kbd-account').locator('.badge[data-state="active"]').waitFor({ timeout: WAIT });
  await tabTo('Remove', 'li.account[data-account="kbd-account"]');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog', { name: 'Remove kbd-account?' }).waitFor();
  await tabTo('Remove kbd-account', 'dialog');
  await page.keyboard.press('Enter');
  await card('kbd-account').waitFor({ state: 'detached', timeout: WAIT });
  await until('the config file to lose the account', async () => !env.readConfig().includes('kbd-account'));
});

test('every page passes axe-core and is captured at 1280 and 360 px, light and dark', async () => {
  const t0 = Date.now();
  await go('overview');
  await page.locator('#health-title').waitFor({ timeout: WAIT });
  console.log(`# overview rendered in ${Date.now() - t0} ms after navigation`);
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [route] of PAGES) {
      await page.setViewportSize({ width: 1280, height: 800 });
      await go(route);
      await page.waitForLoadState('networkidle').catch(() => {});
      await page.locator('[role=status]', { hasText: /^Loading/ }).waitFor({ state: 'detached', timeout: WAIT }).catch(() => {});
      await axeScan(`${route} (${scheme})`);
      await page.screenshot({ path: path.join(artifacts, `${route}-1280x800-${scheme}.png`) });
      await page.setViewportSize({ width: 360, height: 740 });
      await page.waitForTimeout(150); // one frame for the chart's ResizeObserver
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${route} is ${overflow}px wider than a 360px screen`);
      await page.screenshot({ path: path.join(artifacts, `${route}-360x740-${scheme}.png`) });
    }
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ colorScheme: 'light' });
  await go('accounts');
  await page.getByRole('button', { name: 'Add account' }).click();
  await page.getByRole('dialog', { name: 'Add an account' }).waitFor();
  await axeScan('add-account dialog');
  await page.screenshot({ path: path.join(artifacts, 'accounts-add-dialog-1280x800-light.png') });
  await page.keyboard.press('Escape');
});

test('a gateway restart shows the reconnecting banner, then what to do', async () => {
  await go('overview');
  await env.stopGateway();
  const banner = page.locator('.banner', { hasText: 'restarting or unreachable' });
  await banner.waitFor({ timeout: WAIT });
  await env.startGateway();
  // Sessions live in the gateway's memory: after a restart the page asks for a new code (or, if sessions survive,
  // the banner goes away and the page carries on).
  await until('the banner to clear or the session-expired screen', async () =>
    (await page.getByRole('heading', { name: 'Your session has expired' }).count()) > 0 || (await banner.count()) === 0, 30000);
  if (await page.getByRole('heading', { name: 'Your session has expired' }).count()) {
    assert.match(await page.locator('main').textContent(), /llm-gateway ui/);
  }
});

test('signing out ends the session at the gateway', async () => {
  const code = await env.mintCode();
  await page.goto(`${env.url}/ui/#code=${encodeURIComponent(code)}`);
  await page.locator('main h1', { hasText: 'Overview' }).waitFor({ timeout: WAIT });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'You are signed out' }).waitFor({ timeout: WAIT });
  const status = await page.evaluate(() => fetch('/admin/api/v1/status', { credentials: 'same-origin' }).then((r) => r.status));
  assert.equal(status, 401);
});

test('a session that ends mid-use shows "session expired" with the sign-in instructions', async () => {
  const code = await env.mintCode();
  await page.goto(`${env.url}/ui/#code=${encodeURIComponent(code)}`);
  await page.locator('main h1', { hasText: 'Overview' }).waitFor({ timeout: WAIT });
  await context.clearCookies();
  await page.evaluate(() => { location.hash = '#/accounts'; });
  await page.getByRole('heading', { name: 'Your session has expired' }).waitFor({ timeout: WAIT });
  assert.match(await page.locator('main').textContent(), /llm-gateway ui/);
});

test('no request left the gateway origin, and the CSP was never violated', () => {
  assert.deepEqual(foreignRequests, []);
  assert.deepEqual(cspViolations, []);
  assert.deepEqual(pageErrors, []);
});
