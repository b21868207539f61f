// Overview: address, Claude Code, health, today's numbers, the last 24 hours, each account's plan windows.
// Fetches only the status, the hourly usage rollup and Claude Code's status: never the request log.

import { html, useState } from '../lib.js';
import { get, post } from '../api.js';
import { CopyButton, ErrorText, usageErrorText, Loading, StateBadge, WindowBars, useDebounced, useEvents, useLoad, useNow } from '../components.js';
import { TimeChart, bucketize } from '../chart.js';
import { fmtInt, fmtTokens, fmtDuration, sumTokens } from '../format.js';

const SCOPES = {
  managed: 'managed settings', project_local: 'project local settings', project: 'project settings',
  user: 'user settings', environment: 'shell environment', login: 'claude.ai login',
};
const CREDENTIALS = {
  auth_token: 'an auth token', api_key: 'an API key', api_key_helper: 'an API key helper',
  oauth_token: 'a subscription token', claude_ai_login: 'its claude.ai login',
};
const MODES = {
  api_key_helper: 'a dedicated gateway key through apiKeyHelper',
  own_login: 'its own claude.ai login',
  own_login_with_key: 'its own claude.ai login plus a dedicated gateway key',
};
const ACTIONS = { set: 'set', removed: 'removed', restored: 'put back', unset: 'removed again' };

/** "user settings (/home/me/.claude/settings.json)". */
const sourceText = (src) => (src ? `${SCOPES[src.scope] || src.scope}${src.path ? ` (${src.path})` : ''}` : '');

function Changes({ report }) {
  return html`${(report.changes || []).length
      ? html`<ul>${report.changes.map((c) => html`<li><code>${c.key}</code> ${ACTIONS[c.action] || c.action}${c.shown ? html`: <code>${c.shown}</code>` : null}</li>`)}</ul>`
      : null}
    ${(report.left_alone || []).map((l) => html`<p class="warn-text">Left <code>${l.key}</code> alone: ${l.reason}</p>`)}
    ${report.backup ? html`<p class="small muted">The file as it was is kept in <code>${report.backup}</code>.</p>` : null}`;
}

function Report({ report }) {
  if (report.what === 'setup') {
    return html`<div class="report small" role="status">
      <p>${report.changes.length ? html`Claude Code now uses this gateway, with ${MODES[report.mode] || report.mode}. Changed <code>${report.settings_path}</code>:` : html`Claude Code was already set up; <code>${report.settings_path}</code> is unchanged.`}</p>
      <${Changes} report=${report} />
      ${report.dedicated_key && report.dedicated_key.created ? html`<p class="small">Created the client key <strong>${report.dedicated_key.name}</strong> for Claude Code (see Client keys).</p>` : null}
    </div>`;
  }
  return html`<div class="report small" role="status">
    <p>${!report.had_setup
      ? html`Nothing to restore: the gateway had not changed <code>${report.settings_path}</code>.`
      : report.exact
        ? html`Restored <code>${report.settings_path}</code> exactly as it was before the setup.`
        : html`Restored the keys the setup changed in <code>${report.settings_path}</code>:`}</p>
    <${Changes} report=${report} />
  </div>`;
}

/** Whether Claude Code uses this gateway (base URL and credential, where each comes from), with Set up / Restore. */
function ClaudeCode() {
  const cc = useLoad(() => get(OVERVIEW_DATA[0]));
  const [busy, setBusy] = useState(null);
  const [report, setReport] = useState(null);
  const [error, setError] = useState(null);
  const run = async (what) => {
    setBusy(what);
    setError(null);
    setReport(null);
    try {
      const r = await post(`/claude-code/${what}`);
      setReport({ what, ...r });
      await cc.reload();
    } catch (e) {
      setError(new Error(`${what === 'setup' ? 'Setting up' : 'Restoring'} Claude Code failed: ${e.message}`));
    }
    setBusy(null);
  };
  const s = cc.data;
  return html`<section class="card" aria-labelledby="cc-title">
    <h2 id="cc-title">Claude Code</h2>
    ${cc.error ? html`<${ErrorText} error=${`Could not read Claude Code's settings: ${cc.error.message}`} />` : null}
    ${!s && !cc.error ? html`<${Loading} what="Claude Code's settings" />` : null}
    ${s ? html`<p data-claude-code=${s.uses_gateway ? 'uses-gateway' : 'elsewhere'}>
        ${s.uses_gateway
          ? html`<span class="badge ok">Uses this gateway</span>`
          : html`<span class="badge warn">Does not use this gateway</span>`}
      </p>
      <dl class="details small">
        <div><dt>Base URL</dt><dd>${s.base_url
          ? html`<code>${s.base_url.shown}</code> from ${sourceText(s.base_url.source)}`
          : html`Claude Code's default, <code>https://api.anthropic.com</code>`}</dd></div>
        <div><dt>Credential</dt><dd>${s.credential
          ? `${CREDENTIALS[s.credential.kind] || s.credential.kind} (${s.credential.name}) from ${sourceText(s.credential.source)}`
          : 'none yet: Claude Code will ask you to sign in'}</dd></div>
        ${s.setup ? html`<div><dt>Set up</dt><dd>by this gateway, with ${MODES[s.setup.mode] || s.setup.mode}</dd></div>` : null}
      </dl>
      ${(s.findings || []).filter((f) => f.code !== 'uses_gateway').length
        ? html`<ul class="findings">${s.findings.filter((f) => f.code !== 'uses_gateway').map((f) => html`<li class=${f.level}>${f.level === 'warning' ? html`<strong>Warning: </strong>` : null}${f.message}</li>`)}</ul>`
        : null}
      <div class="actions left">
        <button type="button" class="btn primary" disabled=${!!busy} onClick=${() => run('setup')}>${busy === 'setup' ? 'Setting up…' : s.uses_gateway ? 'Set up again' : 'Set up Claude Code'}</button>
        <button type="button" class="btn" disabled=${!!busy || !s.setup} onClick=${() => run('restore')}>${busy === 'restore' ? 'Restoring…' : 'Restore its settings'}</button>
      </div>` : null}
    <${ErrorText} error=${error} />
    ${report ? html`<${Report} report=${report} />` : null}
  </section>`;
}

function Health({ status, now }) {
  const accounts = status.accounts || [];
  const own = status.own_logins || [];
  const usable = status.usable_accounts ?? accounts.filter((a) => a.enabled !== false && a.state === 'active').length;
  const counts = {};
  for (const a of accounts) {
    const s = a.enabled === false ? 'disabled' : a.state;
    counts[s] = (counts[s] || 0) + 1;
  }
  return html`<section class="card" aria-labelledby="health-title">
    <h2 id="health-title">Health</h2>
    <p>
      ${usable > 0
        ? html`<span class="badge ok">Ready</span> ${usable} of ${accounts.length} accounts can serve requests.`
        : own.length > 0 && accounts.length === 0
          ? html`<span class="badge ok">Ready for Claude Code</span> on its own login; other tools need an account (add one under Accounts).`
          : html`<span class="badge bad">Not ready</span> ${accounts.length === 0 ? 'No account yet: add one under Accounts.' : 'No account can serve requests right now.'}`}
    </p>
    ${own.length ? html`<p class="small">${own.length === 1 ? "1 client's own login" : `${own.length} clients' own logins`} passed through (never stored): ${own.map((o) => o.name).join(', ')}.</p>` : null}
    <p class="small muted">
      ${Object.entries(counts).map(([s, n]) => `${n} ${s.replaceAll('_', ' ')}`).join(' · ')}
      ${status.uptime_secs !== undefined ? ` · up ${fmtDuration(status.uptime_secs * 1000)}` : ''}
      ${status.version ? ` · version ${status.version}` : ''}
      ${status.strategy ? ` · routing ${status.strategy.replaceAll('_', ' ')}` : ''}
    </p>
    ${status.usage_dropped ? html`<p class="warn-text">${fmtInt(status.usage_dropped)} usage records were dropped because the usage store fell behind.</p>` : null}
  </section>`;
}

/** Today's totals (UTC day), from the status report and then each `usage` event; dashes when usage is not recorded. */
function Today({ today }) {
  const t = today;
  return html`<section class="card" aria-labelledby="today-title">
    <h2 id="today-title">Today</h2>
    <dl class="stats">
      <div><dt>Requests</dt><dd data-stat="requests">${t ? fmtInt(t.requests || 0) : '–'}</dd></div>
      <div><dt>Tokens</dt><dd data-stat="tokens">${t ? fmtTokens(sumTokens(t)) : '–'}</dd></div>
      <div><dt>Errors</dt><dd data-stat="errors">${t ? fmtInt(t.errors || 0) : '–'}</dd></div>
    </dl>
    ${t ? null : html`<p class="small muted">No usage recorded by this gateway.</p>`}
  </section>`;
}

/** What the overview fetches besides the status: the app starts these while it checks the session. */
export const OVERVIEW_DATA = ['/claude-code', '/usage?since=24h&by=hour'];

function Last24h() {
  const usage = useLoad(() => get(OVERVIEW_DATA[1]));
  const refetch = useDebounced(() => usage.reload(), 1500);
  useEvents((e) => {
    if (e.type === 'request_finished' || e.type === 'resync') refetch();
  });
  const r = usage.data;
  let chart = null;
  if (r) {
    const { times, columns } = bucketize(r.rows || [], r.from, r.to, 3600, [(x) => x.requests, (x) => x.errors, sumTokens]);
    const total = r.totals || {};
    chart = html`<${TimeChart}
      times=${times}
      series=${[
        { label: 'Requests', values: columns[0], color: '--c1', scale: 'left' },
        { label: 'Errors', values: columns[1], color: '--c-bad', scale: 'left' },
        { label: 'Tokens', values: columns[2], color: '--c2', scale: 'right' },
      ]}
      summary=${`Requests, errors and tokens per hour over the last 24 hours: ${fmtInt(total.requests || 0)} requests, ${fmtInt(total.errors || 0)} errors, ${fmtTokens(sumTokens(total))} tokens.`}
    />`;
  }
  return html`<section class="card wide" aria-labelledby="h24-title">
    <h2 id="h24-title">Last 24 hours</h2>
    ${usage.error ? html`<${ErrorText} error=${usageErrorText(usage.error, 'usage chart')} />` : null}
    ${chart || (usage.error ? null : html`<${Loading} what="usage" />`)}
  </section>`;
}

export function Overview() {
  const status = useLoad(() => get('/status'));
  const now = useNow(1000);
  const refetch = useDebounced(() => status.reload(), 500);
  const [today, setToday] = useState(null);
  useEvents((e) => {
    if (e.type === 'usage' && e.today) setToday(e.today);
    else if (['account_state', 'login_completed', 'config_reloaded', 'resync'].includes(e.type)) refetch();
    else if (e.type === 'request_finished') refetch();
  });
  const s = status.data;
  const address = s ? s.url || `${location.origin}` : location.origin;
  return html`<h1 tabindex="-1">Overview</h1>
    ${status.error ? html`<${ErrorText} error=${`Could not load the gateway's status: ${status.error.message}`} />` : null}
    <div class="grid">
      <section class="card" aria-labelledby="addr-title">
        <h2 id="addr-title">Gateway address</h2>
        <p class="address"><code id="gateway-address">${address}</code> <${CopyButton} text=${address} label="Copy the gateway address" /></p>
        <p class="small muted">Point clients at this address: <code>ANTHROPIC_BASE_URL</code> for Anthropic clients, <code>${address}/v1</code> for OpenAI clients.</p>
      </section>
      <${ClaudeCode} />
      ${s ? html`<${Health} status=${s} now=${now} />` : html`<section class="card"><${Loading} what="status" /></section>`}
      <${Today} today=${today || (s && s.today)} />
      <${Last24h} />
      <section class="card wide" aria-labelledby="plans-title">
        <h2 id="plans-title">Plan windows</h2>
        ${s && (s.accounts || []).length === 0 && (s.own_logins || []).length === 0 ? html`<p class="muted">No accounts yet.</p>` : null}
        <ul class="plain account-windows">
          ${(s ? [...(s.accounts || []), ...(s.own_logins || [])] : []).map((a) => html`<li data-account=${a.name}>
            <h3>${a.name} <${StateBadge} account=${a} now=${now} /></h3>
            <${WindowBars} windows=${a.windows} now=${now} compact />
          </li>`)}
        </ul>
      </section>
    </div>`;
}
