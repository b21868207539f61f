// Overview: address, Claude Code, health, today's numbers, the last 24 hours, each account's plan windows.
// Fetches only the status, the hourly usage rollup and Claude Code's status: never the request log.

import { html, useState } from '../lib.js';
import { get, post } from '../api.js';
import { CopyButton, ErrorText, Loading, StateBadge, WindowBars, useDebounced, useEvents, useLoad, useNow } from '../components.js';
import { TimeChart, bucketize } from '../chart.js';
import { fmtInt, fmtTokens, fmtDuration, sumTokens } from '../format.js';

function ClaudeCode() {
  const cc = useLoad(() => get('/claude-code'));
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
      setError(e);
    }
    setBusy(null);
  };
  const s = cc.data;
  return html`<section class="card" aria-labelledby="cc-title">
    <h2 id="cc-title">Claude Code</h2>
    ${cc.error ? html`<${ErrorText} error=${`Could not read Claude Code's settings: ${cc.error.message}`} />` : null}
    ${!s && !cc.error ? html`<${Loading} what="Claude Code's settings" />` : null}
    ${s ? html`<p>
        ${s.uses_this_gateway
          ? html`<span class="badge ok">Uses this gateway</span>`
          : html`<span class="badge warn">Does not use this gateway</span>`}
        ${s.base_url ? html` <span class="muted small">Base URL <code>${s.base_url}</code>${s.base_url_source ? ` from ${s.base_url_source}` : ''}</span>` : null}
      </p>
      ${s.credential_source ? html`<p class="small muted">Credential: ${s.credential_source}${s.signed_in_with_claude_ai ? ' · signed in with claude.ai' : ''}</p>` : null}
      ${(s.findings || []).length
        ? html`<ul class="findings">${s.findings.map((f) => html`<li class=${f.level}>${f.level === 'warning' ? html`<strong>Warning: </strong>` : null}${f.message}</li>`)}</ul>`
        : null}
      <div class="actions left">
        <button type="button" class="btn primary" disabled=${!!busy} onClick=${() => run('setup')}>${busy === 'setup' ? 'Setting up…' : 'Set up Claude Code'}</button>
        <button type="button" class="btn" disabled=${!!busy || !s.set_up_by_gateway} onClick=${() => run('restore')}>${busy === 'restore' ? 'Restoring…' : 'Restore its settings'}</button>
      </div>` : null}
    <${ErrorText} error=${error} />
    ${report ? html`<div class="report" role="status">
      <p>${report.what === 'setup' ? 'Set up' : 'Restored'} <code>${report.settings_path}</code>${report.backup_path ? html` (backup: <code>${report.backup_path}</code>)` : ''}.</p>
      <ul>${(report.changes || []).map((c) => html`<li><code>${c.key}</code>: ${c.action.replaceAll('_', ' ')}${c.detail ? ` (${c.detail})` : ''}</li>`)}</ul>
      ${(report.warnings || []).map((w) => html`<p class="warn-text">${w}</p>`)}
    </div>` : null}
  </section>`;
}

function Health({ status, now }) {
  const accounts = status.accounts || [];
  const usable = accounts.filter((a) => a.enabled !== false && a.state === 'active').length;
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
        : html`<span class="badge bad">Not ready</span> ${accounts.length === 0 ? 'No account yet: add one under Accounts.' : 'No account can serve requests right now.'}`}
    </p>
    <p class="small muted">
      ${Object.entries(counts).map(([s, n]) => `${n} ${s.replaceAll('_', ' ')}`).join(' · ')}
      ${status.uptime_secs !== undefined ? ` · up ${fmtDuration(status.uptime_secs * 1000)}` : ''}
      ${status.version ? ` · version ${status.version}` : ''}
      ${status.strategy ? ` · routing ${status.strategy.replaceAll('_', ' ')}` : ''}
    </p>
    ${status.usage_dropped ? html`<p class="warn-text">${fmtInt(status.usage_dropped)} usage records were dropped because the usage store fell behind.</p>` : null}
  </section>`;
}

function Today({ today }) {
  const t = today || {};
  return html`<section class="card" aria-labelledby="today-title">
    <h2 id="today-title">Today</h2>
    <dl class="stats">
      <div><dt>Requests</dt><dd data-stat="requests">${fmtInt(t.requests || 0)}</dd></div>
      <div><dt>Tokens</dt><dd data-stat="tokens">${fmtTokens(sumTokens(t))}</dd></div>
      <div><dt>Errors</dt><dd data-stat="errors">${fmtInt(t.errors || 0)}</dd></div>
    </dl>
  </section>`;
}

function Last24h() {
  const usage = useLoad(() => get('/usage?since=24h&by=hour'));
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
    ${usage.error ? html`<${ErrorText} error=${`Could not load usage: ${usage.error.message}`} />` : null}
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
        ${s && (s.accounts || []).length === 0 ? html`<p class="muted">No accounts yet.</p>` : null}
        <ul class="plain account-windows">
          ${(s ? s.accounts || [] : []).map((a) => html`<li>
            <h3>${a.name} <${StateBadge} account=${a} now=${now} /></h3>
            <${WindowBars} windows=${a.windows} now=${now} compact />
          </li>`)}
        </ul>
      </section>
    </div>`;
}
