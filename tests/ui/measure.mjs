// Measures how fast the overview renders against the real gateway (the bar: within 200 ms on loopback
// with 20 accounts and 10,000 logged requests). A measurement, not a test: it prints numbers and passes no verdict.
//
//   LLM_GATEWAY_BIN=… MOCK_UPSTREAM_BIN=… node tests/ui/measure.mjs [--accounts 20] [--requests 10000] [--runs 15]
//
// It starts the gateway and mock upstream as the browser tests do (harness.mjs), adds the API-key accounts through
// the admin API, seeds the request log by sending the requests through the gateway (Messages calls with the
// harness's client key, 16 at a time: the way they would be logged in use), signs a browser in, and times the
// overview from navigation start until everything on it has rendered: health, every account's plan windows, Claude
// Code's status and the 24-hour chart (or its error); nothing left loading. Three ways in:
//   cold    a new browser context (empty HTTP cache), the session cookie already set
//   reload  the same page reloaded (every file revalidated: 304s)
//   switch  from the Accounts page to the Overview inside the app (no page load)
// A release build gives the numbers users see; a debug build is slower on the gateway's side.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { startEnvironment, REPO } from './harness.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ACCOUNTS = opt('accounts', 20);
const REQUESTS = opt('requests', 10000);
const RUNS = opt('runs', 15);
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** Installed in every page: resolves window.__overviewDone with ms since navigation start once all is rendered. */
function overviewProbe(accounts) {
  const done = () => {
    const main = document.querySelector('main[data-page="overview"]');
    if (!main) return false;
    if (main.querySelector('[role=status]') && /^Loading/.test(main.querySelector('[role=status]').textContent)) return false;
    const windows = main.querySelectorAll('.account-windows > li').length;
    const chart = main.querySelector('section[aria-labelledby="h24-title"] canvas, section[aria-labelledby="h24-title"] .error-text');
    const claude = main.querySelector('[data-claude-code], section[aria-labelledby="cc-title"] .error-text');
    return windows === accounts && !!chart && !!claude && !!main.querySelector('#health-title');
  };
  window.__overviewDone = new Promise((resolve) => {
    const check = () => {
      if (done()) {
        observer.disconnect();
        resolve(performance.now());
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(document, { childList: true, subtree: true, characterData: true });
  });
}

function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  return `min ${v[0].toFixed(0)} · median ${at(0.5).toFixed(0)} · p95 ${at(0.95).toFixed(0)} · max ${v[v.length - 1].toFixed(0)} ms (${v.length} runs)`;
}

async function seed(env, count) {
  const body = JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
  const headers = { 'x-api-key': env.sdkKey, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
  let next = 0;
  const statuses = {};
  const worker = async () => {
    while (next < count) {
      next += 1;
      const r = await fetch(`${env.url}/v1/messages`, { method: 'POST', headers, body });
      await r.arrayBuffer();
      statuses[r.status] = (statuses[r.status] || 0) + 1;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: 16 }, worker));
  return { ms: Date.now() - t0, statuses };
}

function assetBytes() {
  let total = 0;
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else total += fs.statSync(p).size;
    }
  };
  walk(path.join(REPO, 'ui'));
  return total;
}

const env = await startEnvironment();
let browser;
try {
  console.log(`gateway ${env.url} (${process.env.LLM_GATEWAY_BIN})`);
  for (let i = 0; i < ACCOUNTS; i++) {
    await env.admin('POST', '/accounts', { kind: 'api_key', name: `acct-${String(i + 1).padStart(2, '0')}`, key: `sk-ant-api03-good-measure-${i}` });
  }
  console.log(`accounts: ${ACCOUNTS}`);
  if (REQUESTS > 0) {
    const { ms, statuses } = await seed(env, REQUESTS);
    console.log(`seeded ${REQUESTS} requests through the gateway in ${(ms / 1000).toFixed(1)} s: statuses ${JSON.stringify(statuses)}`);
  }
  const logged = await env.admin('GET', '/usage?since=24h&by=total').then(
    (u) => u.totals.requests,
    (e) => (/: 404 /.test(e.message) ? 'n/a (GET /admin/api/v1/usage answers 404: no request recording in this build)' : `n/a (${e.message})`),
  );
  console.log(`requests in the usage store (last 24 h): ${logged}`);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  const signIn = await browser.newContext();
  const first = await signIn.newPage();
  await first.goto(`${env.url}/ui/#code=${encodeURIComponent(await env.mintCode())}`);
  await first.locator('main h1', { hasText: 'Overview' }).waitFor({ timeout: 30000 });
  const storageState = await signIn.storageState();
  await signIn.close();

  const results = { cold: [], reload: [], switch: [] };
  let transfer = null;
  for (let run = 0; run < RUNS; run++) {
    const ctx = await browser.newContext({ storageState, viewport: { width: 1280, height: 800 } });
    await ctx.addInitScript(overviewProbe, ACCOUNTS);
    const page = await ctx.newPage();
    await page.goto(`${env.url}/ui/#/overview`);
    results.cold.push(await page.evaluate(() => window.__overviewDone));
    if (transfer === null) {
      transfer = await page.evaluate(() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
        .filter((e) => new URL(e.name).pathname.startsWith('/ui/'))
        .reduce((sum, e) => sum + e.encodedBodySize, 0));
    }
    await page.reload();
    results.reload.push(await page.evaluate(() => window.__overviewDone));
    await page.evaluate(() => { location.hash = '#/accounts'; });
    await page.locator('main[data-page="accounts"] li.account').first().waitFor();
    const switched = await page.evaluate(async (n) => {
      const t0 = performance.now();
      location.hash = '#/overview';
      await new Promise((resolve) => {
        const tick = () => {
          const main = document.querySelector('main[data-page="overview"]');
          const ok = main && main.querySelectorAll('.account-windows > li').length === n
            && !(main.querySelector('[role=status]') && /^Loading/.test(main.querySelector('[role=status]').textContent))
            && main.querySelector('[data-claude-code], section[aria-labelledby="cc-title"] .error-text')
            && main.querySelector('section[aria-labelledby="h24-title"] canvas, section[aria-labelledby="h24-title"] .error-text');
          if (ok) resolve();
          else requestAnimationFrame(tick);
        };
        tick();
      });
      return performance.now() - t0;
    }, ACCOUNTS);
    results.switch.push(switched);
    await ctx.close();
  }
  console.log(`UI files: ${(assetBytes() / 1024).toFixed(1)} KB on disk; a cold load transfers ${(transfer / 1024).toFixed(1)} KB of them`);
  console.log(`overview rendered, ${ACCOUNTS} accounts, ${REQUESTS} requests sent:`);
  for (const [k, v] of Object.entries(results)) console.log(`  ${k.padEnd(6)} ${stats(v)}`);
} finally {
  if (browser) await browser.close();
  await env.close();
}
