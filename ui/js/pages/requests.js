// Requests: the log (newest first, cursor pages) with live rows from `request_finished` events, filters, pause,
// and a detail view with each attempt, its reason and the rate-limit snapshot.

import { html, useState, useRef } from '../lib.js';
import { get, query } from '../api.js';
import { Dialog, ErrorText, Icon, Loading, WindowBars, useEvents, useLoad, useNow } from '../components.js';
import { CLIENT_KINDS, fmtDateTime, fmtInt, fmtMs, fmtTime, fmtTokens, fmtUsd, kindLabel } from '../format.js';

const MAX_ROWS = 500;
const EMPTY_FILTERS = { account: '', client_key: '', model: '', client_kind: '', status: '' };

function statusMatches(filter, status) {
  if (!filter) return true;
  if (filter === 'error') return status >= 400 || status === 0;
  if (/^[1-5]xx$/.test(filter)) return Math.floor(status / 100) === Number(filter[0]);
  return String(status) === filter;
}

/** Whether a live record passes the filters (the server applies the same ones to the history). */
function matches(filters, r, names) {
  const accountName = names[r.account] || r.account;
  if (filters.account && r.account !== filters.account && accountName !== filters.account) return false;
  if (filters.client_key && r.client_key !== filters.client_key) return false;
  if (filters.model && r.model !== filters.model && r.model_answered !== filters.model) return false;
  if (filters.client_kind && r.client_kind !== filters.client_kind) return false;
  return statusMatches(filters.status, r.status);
}

function Detail({ record, names, onClose }) {
  const now = useNow(1000);
  const r = record;
  const rows = [
    ['Time', fmtDateTime(r.time)],
    ['Request id', r.id],
    ['Route', r.route],
    ['Client', `${kindLabel(r.client_kind)}${r.client_key ? ` · key ${r.client_key}` : ''}`],
    ['Account', names[r.account] || r.account_name || r.account || '–'],
    ['Model', r.model_answered && r.model_answered !== r.model ? `${r.model} → ${r.model_answered}` : r.model || '–'],
    ['Status', `${r.status}${r.outcome ? ` (${r.outcome.replaceAll('_', ' ')})` : ''}${r.stop_reason ? ` · stop: ${r.stop_reason}` : ''}`],
    ['Stream', r.stream ? 'yes' : 'no'],
    ['Latency', `${fmtMs(r.latency_ms)} total · first byte ${fmtMs(r.first_byte_ms)} · upstream ${fmtMs(r.upstream_ms)} · gateway ${fmtMs(r.gateway_ms)}`],
    ['Tokens', `${fmtInt(r.input_tokens)} in · ${fmtInt(r.output_tokens)} out · ${fmtInt(r.cache_creation_tokens)} cache write · ${fmtInt(r.cache_read_tokens)} cache read`],
  ];
  if (r.cost_usd) rows.push(['Estimated cost', fmtUsd(r.cost_usd)]);
  if (r.value_usd) rows.push(['API-equivalent value', `${fmtUsd(r.value_usd)} (subscription, not spend)`]);
  if (r.spillover) rows.push(['Spill-over', 'served by an API-key account after the subscription windows ran out']);
  return html`<${Dialog} title="Request details" onClose=${onClose} wide>
    <dl class="details">${rows.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>
    <h3>Attempts</h3>
    ${(r.attempts || []).length
      ? html`<ol class="attempts">
      ${r.attempts.map((a) => html`<li><strong>${names[a.account] || a.account}</strong>: ${a.status ?? 'no answer'}${a.reason ? ` — ${a.reason.replaceAll('_', ' ')}` : ''}</li>`)}
    </ol>`
      : r.account
        ? html`<p class="muted">Answered by the first account tried: <strong>${names[r.account] || r.account_name || r.account}</strong>.</p>`
        : html`<p class="muted">No upstream attempt (answered by the gateway).</p>`}
    ${r.rate_limit ? html`<h3>Rate limits reported</h3>
    <${WindowBars} windows=${r.rate_limit} now=${now} />` : null}
    <div class="actions"><button type="button" class="btn primary" onClick=${onClose}>Close</button></div>
  <//>`;
}

export function Requests() {
  const [filters, setFilters] = useState(EMPTY_FILTERS);
  const [applied, setApplied] = useState(EMPTY_FILTERS);
  const [live, setLive] = useState([]);
  const [older, setOlder] = useState([]);
  const [cursor, setCursor] = useState(undefined);
  const [paused, setPaused] = useState(false);
  const [held, setHeld] = useState([]);
  const [detail, setDetail] = useState(null);
  const [moreError, setMoreError] = useState(null);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  const accounts = useLoad(() => get('/accounts'));
  const names = {};
  for (const a of accounts.data ? accounts.data.accounts || [] : []) names[a.id] = a.name;

  const history = useLoad(async () => {
    const page = await get(`/requests${query({ limit: 100, ...applied })}`);
    setLive([]);
    setOlder([]);
    setHeld([]);
    setCursor(page.next_cursor);
    return page;
  }, [applied]);

  useEvents((e) => {
    if (e.type === 'resync') {
      history.reload();
      return;
    }
    if (e.type !== 'request_finished' || !e.request) return;
    if (!matches(applied, e.request, names)) return;
    if (pausedRef.current) setHeld((h) => [e.request, ...h].slice(0, MAX_ROWS));
    else setLive((l) => [e.request, ...l].slice(0, MAX_ROWS));
  });

  const loadMore = async () => {
    setMoreError(null);
    try {
      const page = await get(`/requests${query({ limit: 100, cursor, ...applied })}`);
      setOlder((o) => [...o, ...(page.requests || [])]);
      setCursor(page.next_cursor);
    } catch (e) {
      setMoreError(e);
    }
  };

  const resume = () => {
    setLive((l) => [...held, ...l].slice(0, MAX_ROWS));
    setHeld([]);
    setPaused(false);
  };

  // Live rows may repeat the newest history rows (a request that finished while the page loaded).
  const seen = new Set();
  const rows = [];
  for (const r of [...live, ...(history.data ? history.data.requests || [] : []), ...older]) {
    if (r.id && seen.has(r.id)) continue;
    seen.add(r.id);
    rows.push(r);
  }

  const set = (k) => (e) => setFilters({ ...filters, [k]: e.target.value });
  const apply = (e) => {
    e.preventDefault();
    setApplied({ ...filters });
  };
  const clear = () => {
    setFilters(EMPTY_FILTERS);
    setApplied(EMPTY_FILTERS);
  };

  return html`<div class="page-head">
      <h1 tabindex="-1">Requests</h1>
      ${paused
        ? html`<button type="button" class="btn primary" onClick=${resume}><${Icon} name="play" /> Resume${held.length ? ` (${held.length} new)` : ''}</button>`
        : html`<button type="button" class="btn" onClick=${() => setPaused(true)}><${Icon} name="pause" /> Pause</button>`}
    </div>
    <form class="filters" onSubmit=${apply} aria-label="Filter requests">
      <div class="field"><label for="f-account">Account</label>
        <select id="f-account" value=${filters.account} onChange=${set('account')}>
          <option value="">All</option>
          ${(accounts.data ? accounts.data.accounts || [] : []).map((a) => html`<option value=${a.id}>${a.name}</option>`)}
        </select></div>
      <div class="field"><label for="f-key">Client key</label><input id="f-key" type="text" value=${filters.client_key} onInput=${set('client_key')} /></div>
      <div class="field"><label for="f-model">Model</label><input id="f-model" type="text" value=${filters.model} onInput=${set('model')} /></div>
      <div class="field"><label for="f-kind">Client</label>
        <select id="f-kind" value=${filters.client_kind} onChange=${set('client_kind')}>
          <option value="">All</option>
          ${Object.entries(CLIENT_KINDS).map(([k, v]) => html`<option value=${k}>${v}</option>`)}
        </select></div>
      <div class="field"><label for="f-status">Status</label>
        <select id="f-status" value=${filters.status} onChange=${set('status')}>
          <option value="">All</option><option value="2xx">2xx</option><option value="4xx">4xx</option><option value="5xx">5xx</option><option value="error">Errors</option>
        </select></div>
      <div class="actions left"><button type="submit" class="btn">Apply filters</button><button type="button" class="btn" onClick=${clear}>Clear</button></div>
    </form>
    <p class="sr-only" role="status">${paused ? `Paused; ${held.length} new requests held.` : ''}</p>
    ${history.error ? html`<${ErrorText} error=${`Could not load the request log: ${history.error.message}`} />` : null}
    ${!history.data && !history.error ? html`<${Loading} what="requests" />` : null}
    ${history.data && rows.length === 0 ? html`<p class="muted">No requests yet${applied !== EMPTY_FILTERS ? ' matching these filters' : ''}. New ones appear here as they finish.</p>` : null}
    ${rows.length ? html`<div class="table-wrap" tabindex="0" role="region" aria-label="Request log">
      <table class="requests">
        <thead><tr>
          <th scope="col">Time</th><th scope="col">Client</th><th scope="col">Key</th><th scope="col">Account</th><th scope="col">Model</th>
          <th scope="col">Status</th><th scope="col" class="num">Latency</th><th scope="col" class="num">First byte</th><th scope="col" class="num">Tokens in/out</th><th scope="col" class="num">Failovers</th>
        </tr></thead>
        <tbody>
          ${rows.map((r) => html`<tr key=${r.id} data-request=${r.id} class=${r.status >= 400 || r.status === 0 ? 'failed' : ''}>
            <td><button type="button" class="linkish" onClick=${() => setDetail(r)} aria-label=${`Details of the request at ${fmtTime(r.time)}`}>${fmtTime(r.time)}</button></td>
            <td>${kindLabel(r.client_kind)}</td>
            <td>${r.client_key || '–'}</td>
            <td>${names[r.account] || r.account_name || r.account || '–'}</td>
            <td>${r.model_answered || r.model || '–'}</td>
            <td><span class=${`status s${Math.floor(r.status / 100)}xx`}>${r.status}</span></td>
            <td class="num">${fmtMs(r.latency_ms)}</td>
            <td class="num">${fmtMs(r.first_byte_ms)}</td>
            <td class="num">${fmtTokens(r.input_tokens)} / ${fmtTokens(r.output_tokens)}</td>
            <td class="num">${Math.max(0, (r.attempts || []).length - 1)}</td>
          </tr>`)}
        </tbody>
      </table>
    </div>` : null}
    <${ErrorText} error=${moreError} />
    ${cursor ? html`<div class="actions left"><button type="button" class="btn" onClick=${loadMore}>Load older requests</button></div>` : null}
    ${detail ? html`<${Detail} record=${detail} names=${names} onClose=${() => setDetail(null)} />` : null}`;
}
