// Accounts: state, plan windows, usage today; add (API key or Claude login), log in, edit, enable/disable, remove.

import { html, useState } from '../lib.js';
import { get, post, patch, del, enc, query } from '../api.js';
import {
  ConfirmDialog, Dialog, ErrorText, usageErrorText, Field, Icon, Loading, StateBadge, WindowBars, useDebounced, useEvents, useLoad, useNow,
} from '../components.js';
import { fmtDateTime, fmtInt, fmtTokens, fmtUsd, fmtRelative, splitList, startOfToday, sumTokens } from '../format.js';

/** Why an account is benched (the status report's `cooldown_reason`). */
const BENCH_REASONS = {
  rate_limited: 'Rate limited by Anthropic; other accounts take its requests',
  overloaded: 'Anthropic answered \u201coverloaded\u201d (529); resting',
  circuit_open: 'Paused after repeated failures (server errors or network)',
  extra_usage: 'Plan limit reached; resting until the window resets so nothing is billed as extra usage',
};

const TERMS = 'Anthropic\u2019s terms reserve Claude subscription logins for Claude Code and Anthropic\u2019s own apps: an account that serves other tools may be billed as extra usage or suspended.';

/** The error message for `name` when the API named it, else null (and whether it was consumed). */
const fieldError = (error, ...names) => (error && error.field && names.includes(error.field) ? error.message : null);
const generalError = (error, names) => (error && !(error.field && names.includes(error.field)) ? error : null);

function AddAccount({ onClose, onAdded }) {
  const [kind, setKind] = useState('api_key');
  const [form, setForm] = useState({ name: '', key: '', weight: '1', priority: '0', models: '', base_url: '', clients: 'claude_code' });
  const [showKey, setShowKey] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body = { kind, name: form.name.trim(), weight: Number(form.weight), priority: Number(form.priority) };
    const models = splitList(form.models);
    if (models.length) body.models = models;
    if (kind === 'api_key') {
      body.key = form.key.trim();
      if (form.base_url.trim()) body.base_url = form.base_url.trim();
    } else body.clients = form.clients;
    try {
      const account = await post('/accounts', body);
      onAdded(account, kind === 'oauth');
      onClose();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  const names = ['name', 'key', 'weight', 'priority', 'models', 'base_url', 'clients'];
  return html`<${Dialog} title="Add an account" onClose=${onClose}>
    <form onSubmit=${submit}>
      <fieldset class="choice">
        <legend>Kind</legend>
        <label><input type="radio" name="kind" value="api_key" checked=${kind === 'api_key'} onChange=${() => setKind('api_key')} /> Anthropic API key</label>
        <label><input type="radio" name="kind" value="oauth" checked=${kind === 'oauth'} onChange=${() => setKind('oauth')} /> Claude Pro/Max login</label>
      </fieldset>
      <${Field} id="acc-name" label="Name" error=${fieldError(error, 'name')}>
        ${(a) => html`<input ...${a} type="text" required value=${form.name} onInput=${set('name')} autocomplete="off" />`}
      <//>
      ${kind === 'api_key'
        ? html`<${Field} id="acc-key" label="API key" hint="Stored in the secret store only; never shown again." error=${fieldError(error, 'key')}>
            ${(a) => html`<div class="inline">
              <input ...${a} type=${showKey ? 'text' : 'password'} required value=${form.key} onInput=${set('key')} autocomplete="off" spellcheck=${false} placeholder="sk-ant-api03-…" />
              <button type="button" class="btn small" aria-pressed=${showKey ? 'true' : 'false'} onClick=${() => setShowKey(!showKey)}>${showKey ? 'Hide' : 'Show'}</button>
            </div>`}
          <//>`
        : html`<${Field} id="acc-clients" label="Serves" hint=${TERMS} error=${fieldError(error, 'clients')}>
            ${(a) => html`<select ...${a} value=${form.clients} onChange=${set('clients')}>
              <option value="claude_code">Claude Code only (recommended)</option>
              <option value="any">Any client (at your own risk)</option>
            </select>`}
          <//>`}
      <div class="row">
        <${Field} id="acc-weight" label="Weight" error=${fieldError(error, 'weight')}>
          ${(a) => html`<input ...${a} type="number" min="1" step="1" value=${form.weight} onInput=${set('weight')} />`}
        <//>
        <${Field} id="acc-priority" label="Priority" hint="0 is tried first." error=${fieldError(error, 'priority')}>
          ${(a) => html`<input ...${a} type="number" min="0" step="1" value=${form.priority} onInput=${set('priority')} />`}
        <//>
      </div>
      <${Field} id="acc-models" label="Models (optional)" hint="Comma-separated; empty serves every model." error=${fieldError(error, 'models')}>
        ${(a) => html`<input ...${a} type="text" value=${form.models} onInput=${set('models')} placeholder="claude-sonnet-*, claude-haiku-*" />`}
      <//>
      ${kind === 'api_key'
        ? html`<${Field} id="acc-base" label="Base URL (optional)" error=${fieldError(error, 'base_url')}>
            ${(a) => html`<input ...${a} type="url" value=${form.base_url} onInput=${set('base_url')} placeholder="https://api.anthropic.com" />`}
          <//>`
        : null}
      <${ErrorText} error=${generalError(error, names)} />
      <div class="actions">
        <button type="button" class="btn" onClick=${onClose}>Cancel</button>
        <button type="submit" class="btn primary" disabled=${busy}>${busy ? 'Adding…' : kind === 'oauth' ? 'Add and log in' : 'Add account'}</button>
      </div>
    </form>
  <//>`;
}

function EditAccount({ account, onClose, onSaved }) {
  const [form, setForm] = useState({
    name: account.name,
    weight: String(account.weight ?? 1),
    priority: String(account.priority ?? 0),
    models: (account.models || []).join(', '),
    base_url: account.base_url || '',
    clients: account.clients || 'claude_code',
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    const change = {};
    if (form.name.trim() !== account.name) change.name = form.name.trim();
    if (Number(form.weight) !== account.weight) change.weight = Number(form.weight);
    if (Number(form.priority) !== account.priority) change.priority = Number(form.priority);
    const models = splitList(form.models);
    if (models.join(',') !== (account.models || []).join(',')) change.models = models;
    if (account.kind === 'api_key' && form.base_url.trim() !== (account.base_url || '')) change.base_url = form.base_url.trim() || null;
    if (account.kind === 'oauth' && form.clients !== (account.clients || 'claude_code')) change.clients = form.clients;
    if (Object.keys(change).length === 0) {
      onClose();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await patch(`/accounts/${enc(account.id)}`, change);
      onSaved();
      onClose();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  const names = ['name', 'weight', 'priority', 'models', 'base_url', 'clients'];
  return html`<${Dialog} title=${`Edit ${account.name}`} onClose=${onClose}>
    <form onSubmit=${submit}>
      <${Field} id="edit-name" label="Name" error=${fieldError(error, 'name')}>
        ${(a) => html`<input ...${a} type="text" required value=${form.name} onInput=${set('name')} />`}
      <//>
      <div class="row">
        <${Field} id="edit-weight" label="Weight" error=${fieldError(error, 'weight')}>
          ${(a) => html`<input ...${a} type="number" min="1" step="1" value=${form.weight} onInput=${set('weight')} />`}
        <//>
        <${Field} id="edit-priority" label="Priority" hint="0 is tried first." error=${fieldError(error, 'priority')}>
          ${(a) => html`<input ...${a} type="number" min="0" step="1" value=${form.priority} onInput=${set('priority')} />`}
        <//>
      </div>
      <${Field} id="edit-models" label="Models" hint="Comma-separated; empty serves every model." error=${fieldError(error, 'models')}>
        ${(a) => html`<input ...${a} type="text" value=${form.models} onInput=${set('models')} />`}
      <//>
      ${account.kind === 'api_key'
        ? html`<${Field} id="edit-base" label="Base URL" hint="Empty uses the gateway's upstream." error=${fieldError(error, 'base_url')}>
            ${(a) => html`<input ...${a} type="url" value=${form.base_url} onInput=${set('base_url')} />`}
          <//>`
        : html`<${Field} id="edit-clients" label="Serves" hint=${TERMS} error=${fieldError(error, 'clients')}>
            ${(a) => html`<select ...${a} value=${form.clients} onChange=${set('clients')}>
              <option value="claude_code">Claude Code only (recommended)</option>
              <option value="any">Any client (at your own risk)</option>
            </select>`}
          <//>`}
      <${ErrorText} error=${generalError(error, names)} />
      <div class="actions">
        <button type="button" class="btn" onClick=${onClose}>Cancel</button>
        <button type="submit" class="btn primary" disabled=${busy}>${busy ? 'Saving…' : 'Save'}</button>
      </div>
    </form>
  <//>`;
}

/**
 * Whether the authorize page sends the browser back to this gateway's own loopback `/callback` (the gateway's
 * default when it listens on loopback), which completes the login by itself; otherwise the page shows a code.
 */
function returnsHere(redirectUri) {
  try {
    const u = new URL(redirectUri);
    return ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) && u.port === location.port && u.pathname === '/callback';
  } catch {
    return false;
  }
}

/** The login in progress for one account: the authorize page opened, a paste-the-code fallback. */
function LoginPanel({ account, login, onDone, onCancel }) {
  const [code, setCode] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const complete = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await post(`/accounts/${enc(account.id)}/login/complete`, { code: code.trim() });
      onDone();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  const id = `login-code-${account.id}`;
  return html`<div class="login-panel" role="region" aria-label=${`Login for ${account.name}`}>
    <p role="status">
      ${login.failed
        ? html`<span class="error-text">The login failed: ${login.failed}</span>`
        : returnsHere(login.redirect_uri)
          ? html`A Claude sign-in page opened in a new window. Approve there and this account turns active by itself.`
          : html`A Claude sign-in page opened in a new window. Approve there, then paste the code it shows below.`}
    </p>
    <p class="small">If no window opened, <a href=${login.url} target="_blank" rel="noopener noreferrer">open the sign-in page</a>.</p>
    <form onSubmit=${complete} class="inline-form">
      <${Field} id=${id} label="Or paste the code the page shows" hint="If the sign-in page ends on an address this browser cannot open (a gateway on another machine), paste that whole address." error=${error ? error.message : null}>
        ${(a) => html`<input ...${a} type="text" autocomplete="off" spellcheck=${false} value=${code} onInput=${(e) => setCode(e.target.value)} placeholder="code#state" />`}
      <//>
      <div class="actions left">
        <button type="submit" class="btn" disabled=${busy || !code.trim()}>${busy ? 'Completing…' : 'Complete login'}</button>
        <button type="button" class="btn" onClick=${onCancel}>Cancel login</button>
      </div>
    </form>
  </div>`;
}

function AccountCard({ account, usage, usageKnown, now, login, onLogin, onLoginDone, onLoginCancel, onEdit, onRemove, reload }) {
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const [probe, setProbe] = useState(null);
  const act = async (what, fn) => {
    setBusy(what);
    setError(null);
    try {
      await fn();
      await reload();
    } catch (e) {
      setError(e);
    }
    setBusy(null);
  };
  const toggle = () => act('toggle', () => post(`/accounts/${enc(account.id)}/${account.enabled === false ? 'enable' : 'disable'}`));
  const test = () => act('probe', async () => setProbe(await post(`/accounts/${enc(account.id)}/probe`)));
  const needsLogin = account.kind === 'oauth' && ['needs_login', 'missing_credential'].includes(account.state);
  const titleId = `acc-title-${account.id}`;
  return html`<li class="card account" data-account=${account.name}>
    <div class="account-head">
      <h2 id=${titleId}>${account.name}</h2>
      <${StateBadge} account=${account} now=${now} />
    </div>
    <p class="small muted">${[
      account.kind === 'oauth' ? 'Claude Pro/Max login' : 'API key',
      account.email,
      `weight ${account.weight}`,
      `priority ${account.priority}`,
      account.models && account.models.length ? `models ${account.models.join(', ')}` : null,
      account.kind === 'oauth' ? `serves ${account.clients === 'any' ? 'any client' : 'Claude Code only'}` : null,
      account.last_used ? `last used ${fmtRelative(account.last_used, now)}` : null,
    ].filter(Boolean).join(' · ')}</p>
    ${needsLogin
      ? html`<p class="warn-text">${/^not logged in/.test(account.error || '') || !account.error ? 'Not logged in yet: use \u201cLog in with Claude\u201d.' : `${account.error} Log in with Claude again.`}</p>`
      : account.error && ['error', 'needs_login', 'missing_credential'].includes(account.state)
        ? html`<p class="error-text">${account.state === 'error' ? 'The upstream said: ' : ''}${account.error}</p>`
        : null}
    ${['cooling_down', 'circuit_open'].includes(account.state) && account.cooldown_reason
      ? html`<p class="small warn-text">${BENCH_REASONS[account.cooldown_reason] || account.cooldown_reason}${account.cooldown_until ? ` until ${fmtDateTime(account.cooldown_until)}` : ''}.</p>`
      : null}
    <${WindowBars} windows=${account.windows} now=${now} />
    ${usageKnown ? html`<p class="small">
      Today: ${usage ? `${fmtInt(usage.requests)} requests · ${fmtTokens(sumTokens(usage))} tokens · ${fmtInt(usage.errors)} errors${usage.cost_usd ? ` · ${fmtUsd(usage.cost_usd)} spent` : ''}${usage.value_usd ? ` · ${fmtUsd(usage.value_usd)} API-equivalent value (not spend)` : ''}` : 'no requests'}
    </p>` : null}
    ${login ? html`<${LoginPanel} account=${account} login=${login} onDone=${onLoginDone} onCancel=${onLoginCancel} />` : null}
    ${probe ? html`<p class="small" role="status">Test: ${probe.usable ? 'usable' : 'not usable'}${probe.status ? ` (HTTP ${probe.status})` : ''}, ${probe.latency_ms} ms — ${probe.detail}</p>` : null}
    <${ErrorText} error=${error} />
    <div class="actions left">
      ${account.kind === 'oauth' ? html`<button type="button" class=${`btn${needsLogin ? ' primary' : ''}`} onClick=${() => onLogin(account)} disabled=${!!login}>Log in with Claude</button>` : null}
      <button type="button" class="btn" onClick=${() => onEdit(account)}>Edit</button>
      <button type="button" class="btn" onClick=${toggle} disabled=${!!busy}>${account.enabled === false ? 'Enable' : 'Disable'}</button>
      <button type="button" class="btn" onClick=${test} disabled=${!!busy}>${busy === 'probe' ? 'Testing…' : 'Test'}</button>
      <button type="button" class="btn danger" onClick=${() => onRemove(account)}>Remove</button>
    </div>
  </li>`;
}

export function Accounts() {
  const accounts = useLoad(() => get('/accounts'));
  // Clients' own logins passed through are in the status report only (they are not stored accounts).
  const status = useLoad(() => get('/status'));
  const refetchStatus = useDebounced(() => status.reload(), 1000);
  const usage = useLoad(() => get(`/usage${query({ since: startOfToday(), by: 'account' })}`));
  const now = useNow(1000);
  const [dialog, setDialog] = useState(null);
  const [logins, setLogins] = useState({});
  const [loginError, setLoginError] = useState(null);
  const [notice, setNotice] = useState('');
  const refetch = useDebounced(() => accounts.reload(), 300);
  const refetchUsage = useDebounced(() => usage.reload(), 2000);

  const endLogin = (id) => setLogins((l) => {
    const { [id]: _, ...rest } = l;
    return rest;
  });

  useEvents((e) => {
    if (e.type === 'account_state' || e.type === 'config_reloaded' || e.type === 'resync') {
      refetch();
      if (e.type !== 'account_state' || String(e.account_id || '').startsWith('own:')) refetchStatus();
    }
    if (e.type === 'login_completed') {
      endLogin(e.account_id);
      setNotice(`Logged in${e.email ? ` as ${e.email}` : ''}.`);
      refetch();
    }
    if (e.type === 'login_failed') setLogins((l) => (l[e.account_id] ? { ...l, [e.account_id]: { ...l[e.account_id], failed: e.message || 'unknown reason' } } : l));
    if (e.type === 'request_finished' || e.type === 'resync') {
      refetchUsage();
      refetchStatus();
    }
  });

  const startLogin = async (account) => {
    setLoginError(null);
    try {
      const r = await post(`/accounts/${enc(account.id)}/login`, {});
      setLogins((l) => ({ ...l, [account.id]: { url: r.url, expires_at: r.expires_at, redirect_uri: r.redirect_uri } }));
      // The desktop app intercepts this and opens the system browser.
      window.open(r.url, '_blank', 'noopener');
    } catch (e) {
      setLoginError(new Error(`Could not start the login for ${account.name}: ${e.message}`));
    }
  };

  const usageBy = {};
  for (const row of usage.data ? usage.data.rows || [] : []) usageBy[row.key] = row;
  const list = accounts.data ? accounts.data.accounts || [] : null;
  const ownLogins = status.data ? status.data.own_logins || [] : [];

  return html`<div class="page-head">
      <h1 tabindex="-1">Accounts</h1>
      <button type="button" class="btn primary" onClick=${() => setDialog({ kind: 'add' })}><${Icon} name="plus" /> Add account</button>
    </div>
    <p class="sr-only" role="status">${notice}</p>
    ${notice ? html`<p class="notice">${notice}</p>` : null}
    ${accounts.error ? html`<${ErrorText} error=${`Could not load the accounts: ${accounts.error.message}`} />` : null}
    ${usage.error ? html`<${ErrorText} error=${usageErrorText(usage.error, 'usage today')} />` : null}
    <${ErrorText} error=${loginError} />
    ${list === null && !accounts.error ? html`<${Loading} what="accounts" />` : null}
    ${list && list.length === 0 ? html`<p>No accounts yet. Add an Anthropic API key or log in with a Claude Pro/Max plan.</p>` : null}
    <ul class="plain accounts">
      ${(list || []).map((a) => html`<${AccountCard}
        key=${a.id}
        account=${a}
        usage=${usageBy[a.id] || usageBy[a.name]}
        usageKnown=${!!usage.data}
        now=${now}
        login=${logins[a.id]}
        onLogin=${startLogin}
        onLoginDone=${() => { endLogin(a.id); setNotice(`${a.name} is logged in.`); accounts.reload(); }}
        onLoginCancel=${() => endLogin(a.id)}
        onEdit=${(acc) => setDialog({ kind: 'edit', account: acc })}
        onRemove=${(acc) => setDialog({ kind: 'remove', account: acc })}
        reload=${accounts.reload}
      />`)}
    </ul>
    ${ownLogins.length ? html`<section class="own-logins" aria-labelledby="own-title">
      <h2 id="own-title">Clients' own logins</h2>
      <p class="small muted">Requests that brought their own Anthropic login (Claude Code with only <code>ANTHROPIC_BASE_URL</code> set) go upstream with it, untouched; the gateway never stores it and tracks it under a short hash. Forgotten after a day unused.</p>
      <ul class="plain accounts own-logins">
        ${ownLogins.map((o) => html`<li class="card account" data-own-login=${o.name}>
          <div class="account-head"><h3>${o.name}</h3><${StateBadge} account=${o} now=${now} /></div>
          <p class="small muted">${fmtInt(o.requests || 0)} ${o.requests === 1 ? 'request' : 'requests'} since the gateway started</p>
          <${WindowBars} windows=${o.windows} now=${now} compact />
        </li>`)}
      </ul>
    </section>` : null}
    ${dialog && dialog.kind === 'add' ? html`<${AddAccount}
      onClose=${() => setDialog(null)}
      onAdded=${(account, oauth) => {
        setNotice(`Added ${account.name}.`);
        accounts.reload();
        if (oauth) startLogin(account);
      }} />` : null}
    ${dialog && dialog.kind === 'edit' ? html`<${EditAccount} account=${dialog.account} onClose=${() => setDialog(null)} onSaved=${() => { setNotice(`Saved ${dialog.account.name}.`); accounts.reload(); }} />` : null}
    ${dialog && dialog.kind === 'remove' ? html`<${ConfirmDialog}
      title=${`Remove ${dialog.account.name}?`}
      message=${`The account \u201c${dialog.account.name}\u201d is removed from the gateway and its credential deleted from the secret store. This cannot be undone.`}
      confirmLabel=${`Remove ${dialog.account.name}`}
      onConfirm=${async () => {
        await del(`/accounts/${enc(dialog.account.id)}`);
        setNotice(`Removed ${dialog.account.name}.`);
        await accounts.reload();
      }}
      onClose=${() => setDialog(null)} />` : null}`;
}
