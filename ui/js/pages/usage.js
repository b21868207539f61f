// Usage: totals over a chosen range grouped by account / key / model / client / day / hour; tokens by kind over
// time; estimated spend (API keys) kept apart from the API-equivalent value of subscription traffic (not spend);
// CSV export made in the browser.

import { html, useState } from '../lib.js';
import { get, query } from '../api.js';
import { ErrorText, usageErrorText, Icon, Loading, useDebounced, useEvents, useLoad } from '../components.js';
import { TimeChart, bucketize } from '../chart.js';
import { fmtInt, fmtTokens, fmtUsd, fmtDateTime, kindLabel, sumTokens } from '../format.js';

const RANGES = { '24h': 'Last 24 hours', '7d': 'Last 7 days', '30d': 'Last 30 days', custom: 'Custom range' };
const GROUPS = { account: 'Account', client_key: 'Client key', model: 'Model', client_kind: 'Client', day: 'Day', hour: 'Hour' };

function rangeParams(range, from, to) {
  if (range !== 'custom') return { since: range };
  const p = {};
  if (from) p.since = new Date(`${from}T00:00:00`).toISOString();
  if (to) p.until = new Date(`${to}T23:59:59`).toISOString();
  return p;
}

function csvCell(v) {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) || /^[=+\-@]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The table as CSV (spreadsheet formula prefixes quoted), downloaded through an object URL. */
function downloadCsv(report, by) {
  const head = [GROUPS[by] || by, 'label', 'requests', 'errors', 'input_tokens', 'output_tokens', 'cache_creation_tokens', 'cache_read_tokens', 'cost_usd', 'api_equivalent_value_usd'];
  const lines = [head.join(',')];
  for (const r of report.rows || []) {
    lines.push([r.key, r.label || '', r.requests, r.errors, r.input_tokens, r.output_tokens, r.cache_creation_tokens, r.cache_read_tokens, r.cost_usd ?? '', r.value_usd ?? ''].map(csvCell).join(','));
  }
  const blob = new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `llm-gateway-usage-by-${by}-${report.from.slice(0, 10)}-${report.to.slice(0, 10)}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function rowLabel(by, row) {
  if (by === 'hour' || by === 'day') return fmtDateTime(row.key);
  if (by === 'client_kind') return kindLabel(row.key);
  return row.label || row.key;
}

export function Usage() {
  const [range, setRange] = useState('24h');
  const [by, setBy] = useState('account');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const params = rangeParams(range, from, to);
  const key = JSON.stringify([params, by]);
  const report = useLoad(() => get(`/usage${query({ ...params, by })}`), [key]);
  const step = range === '24h' ? 'hour' : 'day';
  const series = useLoad(() => get(`/usage${query({ ...params, by: step })}`), [JSON.stringify(params), step]);
  const refetch = useDebounced(() => {
    report.reload();
    series.reload();
  }, 1500);
  useEvents((e) => {
    if (e.type === 'request_finished' || e.type === 'resync') refetch();
  });

  const r = report.data;
  const s = series.data;
  let chart = null;
  if (s) {
    const { times, columns } = bucketize(s.rows || [], s.from, s.to, step === 'hour' ? 3600 : 86400, [
      (x) => x.input_tokens, (x) => x.output_tokens, (x) => x.cache_creation_tokens, (x) => x.cache_read_tokens,
    ]);
    const t = s.totals || {};
    chart = html`<${TimeChart} times=${times} bars=${false}
      series=${[
        { label: 'Input', values: columns[0], color: '--c1' },
        { label: 'Output', values: columns[1], color: '--c2' },
        { label: 'Cache write', values: columns[2], color: '--c3' },
        { label: 'Cache read', values: columns[3], color: '--c4' },
      ]}
      summary=${`Tokens by kind per ${step}: ${fmtInt(t.input_tokens || 0)} input, ${fmtInt(t.output_tokens || 0)} output, ${fmtInt(t.cache_creation_tokens || 0)} cache write, ${fmtInt(t.cache_read_tokens || 0)} cache read.`} />`;
  }
  const totals = r ? r.totals || {} : null;

  return html`<h1 tabindex="-1">Usage</h1>
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="Usage range and grouping">
      <div class="field"><label for="u-range">Range</label>
        <select id="u-range" value=${range} onChange=${(e) => setRange(e.target.value)}>
          ${Object.entries(RANGES).map(([k, v]) => html`<option value=${k}>${v}</option>`)}
        </select></div>
      ${range === 'custom' ? html`
        <div class="field"><label for="u-from">From</label><input id="u-from" type="date" value=${from} onChange=${(e) => setFrom(e.target.value)} /></div>
        <div class="field"><label for="u-to">To</label><input id="u-to" type="date" value=${to} onChange=${(e) => setTo(e.target.value)} /></div>` : null}
      <div class="field"><label for="u-by">Group by</label>
        <select id="u-by" value=${by} onChange=${(e) => setBy(e.target.value)}>
          ${Object.entries(GROUPS).map(([k, v]) => html`<option value=${k}>${v}</option>`)}
        </select></div>
      <div class="actions left">
        <button type="button" class="btn" disabled=${!r} onClick=${() => downloadCsv(r, by)}><${Icon} name="download" /> Export CSV</button>
      </div>
    </form>
    ${report.error ? html`<${ErrorText} error=${usageErrorText(report.error, 'usage report')} />` : null}
    ${totals ? html`<dl class="stats card">
      <div><dt>Requests</dt><dd data-stat="requests">${fmtInt(totals.requests)}</dd></div>
      <div><dt>Errors</dt><dd>${fmtInt(totals.errors)}</dd></div>
      <div><dt>Input tokens</dt><dd>${fmtTokens(totals.input_tokens)}</dd></div>
      <div><dt>Output tokens</dt><dd>${fmtTokens(totals.output_tokens)}</dd></div>
      <div><dt>Cache write</dt><dd>${fmtTokens(totals.cache_creation_tokens)}</dd></div>
      <div><dt>Cache read</dt><dd>${fmtTokens(totals.cache_read_tokens)}</dd></div>
      <div><dt>Estimated spend (API keys)</dt><dd data-stat="cost">${fmtUsd(totals.cost_usd || 0)}</dd></div>
      <div><dt>Subscription value (API-equivalent, not spend)</dt><dd data-stat="value">${fmtUsd(totals.value_usd || 0)}</dd></div>
    </dl>` : null}
    <section class="card" aria-labelledby="tokens-title">
      <h2 id="tokens-title">Tokens by kind</h2>
      ${series.error && !report.error ? html`<${ErrorText} error=${usageErrorText(series.error, 'usage over time')} />` : null}
      ${chart || (series.error ? null : html`<${Loading} what="usage over time" />`)}
    </section>
    ${!r && !report.error ? html`<${Loading} what="usage" />` : null}
    ${r ? html`<section aria-labelledby="usage-table-title">
      <h2 id="usage-table-title">By ${(GROUPS[by] || by).toLowerCase()}</h2>
      ${(r.rows || []).length === 0 ? html`<p class="muted">No requests in this range.</p>` : html`<div class="table-wrap" tabindex="0" role="region" aria-label=${`Usage by ${GROUPS[by]}`}>
        <table class="usage">
          <thead><tr>
            <th scope="col">${GROUPS[by]}</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Errors</th>
            <th scope="col" class="num">Input</th><th scope="col" class="num">Output</th><th scope="col" class="num">Cache write</th><th scope="col" class="num">Cache read</th>
            <th scope="col" class="num">Spend</th><th scope="col" class="num">API-equivalent value</th>
          </tr></thead>
          <tbody>${r.rows.map((row) => html`<tr data-usage-key=${row.key}>
            <th scope="row">${rowLabel(by, row)}</th><td class="num">${fmtInt(row.requests)}</td><td class="num">${fmtInt(row.errors)}</td>
            <td class="num">${fmtTokens(row.input_tokens)}</td><td class="num">${fmtTokens(row.output_tokens)}</td>
            <td class="num">${fmtTokens(row.cache_creation_tokens)}</td><td class="num">${fmtTokens(row.cache_read_tokens)}</td>
            <td class="num">${row.cost_usd ? fmtUsd(row.cost_usd) : '–'}</td><td class="num">${row.value_usd ? fmtUsd(row.value_usd) : '–'}</td>
          </tr>`)}</tbody>
        </table>
      </div>`}
      <p class="small muted">Spend is the estimated cost of requests served by API-key accounts. Subscription traffic is covered by the plan; its API-equivalent value is what the same tokens would cost on an API key, never money spent.</p>
    </section>` : null}`;
}
