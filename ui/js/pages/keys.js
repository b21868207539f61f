// Client keys: create (the key shown once, with its per-key limits), list with last use and usage, revoke.

import { html, useState } from '../lib.js';
import { get, post, del, enc } from '../api.js';
import { ConfirmDialog, CopyButton, Dialog, ErrorText, Field, Icon, Loading, useDebounced, useEvents, useLoad, useNow } from '../components.js';
import { fmtInt, fmtTokens, fmtUsd, fmtRelative, fmtDateTime, splitList, sumTokens } from '../format.js';

const LIMIT_FIELDS = ['name', 'models', 'rpm', 'tokens_per_day', 'budget_usd_month', 'accounts', 'priority_tiers', 'expires'];

function CreateKey({ onClose, onCreated }) {
  const [form, setForm] = useState({ name: '', models: '', rpm: '', tokens_per_day: '', budget_usd_month: '', accounts: '', priority_tiers: '', expires: '' });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const err = (name) => (error && error.field && error.field.replace(/^limits\./, '') === name ? error.message : null);
  const submit = async (e) => {
    e.preventDefault();
    const body = { name: form.name.trim() };
    if (form.models.trim()) body.models = splitList(form.models);
    if (form.rpm) body.rpm = Number(form.rpm);
    if (form.tokens_per_day) body.tokens_per_day = Number(form.tokens_per_day);
    if (form.budget_usd_month) body.budget_usd_month = Number(form.budget_usd_month);
    if (form.accounts.trim()) body.accounts = splitList(form.accounts);
    if (form.priority_tiers.trim()) body.priority_tiers = splitList(form.priority_tiers).map(Number);
    if (form.expires) body.expires = form.expires;
    setBusy(true);
    setError(null);
    try {
      onCreated(await post('/client-keys', body));
    } catch (x) {
      setError(x);
      setBusy(false);
    }
  };
  const general = error && !(error.field && LIMIT_FIELDS.includes(error.field.replace(/^limits\./, ''))) ? error : null;
  return html`<${Dialog} title="Create a client key" onClose=${onClose}>
    <form onSubmit=${submit}>
      <${Field} id="key-name" label="Name" hint="Who or what uses it, e.g. laptop-claude-code." error=${err('name')}>
        ${(a) => html`<input ...${a} type="text" required value=${form.name} onInput=${set('name')} autocomplete="off" />`}
      <//>
      <fieldset>
        <legend>Limits (all optional)</legend>
        <${Field} id="key-models" label="Allowed models" hint="Comma-separated globs, e.g. claude-haiku-*." error=${err('models')}>
          ${(a) => html`<input ...${a} type="text" value=${form.models} onInput=${set('models')} />`}
        <//>
        <div class="row">
          <${Field} id="key-rpm" label="Requests per minute" error=${err('rpm')}>
            ${(a) => html`<input ...${a} type="number" min="1" step="1" value=${form.rpm} onInput=${set('rpm')} />`}
          <//>
          <${Field} id="key-tpd" label="Tokens per day" error=${err('tokens_per_day')}>
            ${(a) => html`<input ...${a} type="number" min="1" step="1" value=${form.tokens_per_day} onInput=${set('tokens_per_day')} />`}
          <//>
        </div>
        <div class="row">
          <${Field} id="key-budget" label="Monthly budget (USD)" error=${err('budget_usd_month')}>
            ${(a) => html`<input ...${a} type="number" min="0" step="0.01" value=${form.budget_usd_month} onInput=${set('budget_usd_month')} />`}
          <//>
          <${Field} id="key-expires" label="Expires after" hint="UTC day." error=${err('expires')}>
            ${(a) => html`<input ...${a} type="date" value=${form.expires} onInput=${set('expires')} />`}
          <//>
        </div>
        <${Field} id="key-accounts" label="Allowed accounts" hint="Comma-separated names or ids." error=${err('accounts')}>
          ${(a) => html`<input ...${a} type="text" value=${form.accounts} onInput=${set('accounts')} />`}
        <//>
        <${Field} id="key-tiers" label="Allowed priority tiers" hint="Comma-separated numbers." error=${err('priority_tiers')}>
          ${(a) => html`<input ...${a} type="text" inputmode="numeric" value=${form.priority_tiers} onInput=${set('priority_tiers')} />`}
        <//>
      </fieldset>
      <${ErrorText} error=${general} />
      <div class="actions">
        <button type="button" class="btn" onClick=${onClose}>Cancel</button>
        <button type="submit" class="btn primary" disabled=${busy}>${busy ? 'Creating…' : 'Create key'}</button>
      </div>
    </form>
  <//>`;
}

function ShowKeyOnce({ created, onClose }) {
  return html`<${Dialog} title=${`Key ${created.client_key ? created.client_key.name : ''} created`} onClose=${onClose}>
    <p><strong>Copy it now: it is shown only once.</strong> The gateway keeps only its hash.</p>
    <div class="field">
      <label for="new-key">Client key</label>
      <div class="inline">
        <input id="new-key" type="text" readonly value=${created.key} spellcheck=${false} onFocus=${(e) => e.target.select()} />
        <${CopyButton} text=${created.key} label="Copy the new client key" />
      </div>
    </div>
    <p class="small muted">Clients send it as <code>x-api-key</code>, <code>Authorization: Bearer</code> or <code>x-llm-gateway-key</code>.</p>
    <div class="actions"><button type="button" class="btn primary" onClick=${onClose}>Done</button></div>
  <//>`;
}

function limitsText(l) {
  if (!l) return 'no limits';
  const parts = [];
  if (l.models && l.models.length) parts.push(`models ${l.models.join(', ')}`);
  if (l.rpm) parts.push(`${l.rpm}/min`);
  if (l.tokens_per_day) parts.push(`${fmtTokens(l.tokens_per_day)} tokens/day`);
  if (l.budget_usd_month !== null && l.budget_usd_month !== undefined) parts.push(`${fmtUsd(l.budget_usd_month)}/month`);
  if (l.accounts && l.accounts.length) parts.push(`accounts ${l.accounts.join(', ')}`);
  if (l.priority_tiers && l.priority_tiers.length) parts.push(`tiers ${l.priority_tiers.join(', ')}`);
  if (l.expires) parts.push(`expires ${l.expires}`);
  return parts.length ? parts.join(' · ') : 'no limits';
}

export function ClientKeys() {
  const keys = useLoad(() => get('/client-keys'));
  const now = useNow(30000);
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState('');
  const refetch = useDebounced(() => keys.reload(), 1000);
  useEvents((e) => {
    if (['client_key_created', 'client_key_revoked', 'config_reloaded', 'resync', 'request_finished'].includes(e.type)) refetch();
  });
  const list = keys.data ? keys.data.client_keys || [] : null;
  return html`<div class="page-head">
      <h1 tabindex="-1">Client keys</h1>
      <button type="button" class="btn primary" onClick=${() => setDialog({ kind: 'create' })}><${Icon} name="plus" /> Create key</button>
    </div>
    <p>Gateway keys for your tools. While none exists, the gateway accepts requests from this machine without a key.</p>
    <p class="sr-only" role="status">${notice}</p>
    ${notice ? html`<p class="notice">${notice}</p>` : null}
    ${keys.error ? html`<${ErrorText} error=${`Could not load the client keys: ${keys.error.message}`} />` : null}
    ${list === null && !keys.error ? html`<${Loading} what="client keys" />` : null}
    ${list && list.length === 0 ? html`<p class="muted">No client keys yet.</p>` : null}
    ${list && list.length ? html`<div class="table-wrap" tabindex="0" role="region" aria-label="Client keys">
      <table class="keys">
        <thead><tr><th scope="col">Name</th><th scope="col">Key</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Today</th><th scope="col">Limits</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          ${list.map((k) => html`<tr data-key=${k.name}>
            <th scope="row">${k.name}${k.purpose === 'claude_code' ? html` <span class="badge info">Claude Code</span>` : null}</th>
            <td><code>${k.prefix}…</code></td>
            <td>${fmtDateTime(k.created_at)}</td>
            <td>${k.last_used ? fmtRelative(k.last_used, now) : 'never'}</td>
            <td>${k.usage_today ? `${fmtInt(k.usage_today.requests)} req · ${fmtTokens(sumTokens(k.usage_today))} tok` : '–'}</td>
            <td class="small">${limitsText(k.limits)}</td>
            <td><button type="button" class="btn small danger" onClick=${() => setDialog({ kind: 'revoke', key: k })}>Revoke<span class="sr-only"> ${k.name}</span></button></td>
          </tr>`)}
        </tbody>
      </table>
    </div>` : null}
    ${dialog && dialog.kind === 'create' ? html`<${CreateKey} onClose=${() => setDialog(null)} onCreated=${(created) => { keys.reload(); setDialog({ kind: 'created', created }); }} />` : null}
    ${dialog && dialog.kind === 'created' ? html`<${ShowKeyOnce} created=${dialog.created} onClose=${() => setDialog(null)} />` : null}
    ${dialog && dialog.kind === 'revoke' ? html`<${ConfirmDialog}
      title=${`Revoke ${dialog.key.name}?`}
      message=${`Requests with the key \u201c${dialog.key.name}\u201d (${dialog.key.prefix}…) get 401 from now on. This cannot be undone.`}
      confirmLabel=${`Revoke ${dialog.key.name}`}
      onConfirm=${async () => {
        await del(`/client-keys/${enc(dialog.key.id)}`);
        setNotice(`Revoked ${dialog.key.name}.`);
        await keys.reload();
      }}
      onClose=${() => setDialog(null)} />` : null}`;
}
