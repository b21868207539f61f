// Settings: routing, session affinity, subscription policy, listen address. A change is validated by the gateway
// (POST /config/validate) before it is applied (PATCH /config); an error naming a key is shown at that field.

import { html, useState, useEffect } from '../lib.js';
import { get, post, patch } from '../api.js';
import { ErrorText, Field, Loading, useEvents, useLoad } from '../components.js';

/** The settings this page edits: config key, label, control, choices, hint. */
const SETTINGS = [
  { key: 'routing.strategy', label: 'Routing strategy', type: 'select', choices: { round_robin: 'Round robin', weighted: 'Weighted', random: 'Random', health_first: 'Healthiest first' }, hint: 'How the gateway picks among accounts of the same priority.' },
  { key: 'routing.session_affinity', label: 'Keep a conversation on one account (session affinity)', type: 'checkbox', hint: 'Claude Code sessions stay on the account that served them, so its prompt cache keeps working.' },
  { key: 'routing.affinity_ttl_secs', label: 'Session affinity lasts (seconds)', type: 'number', min: 1 },
  { key: 'subscriptions.own_login', label: 'Claude Code\u2019s own login', type: 'select', choices: { forward: 'Forward it (use the user\u2019s own plan)', refuse: 'Refuse it (gateway keys only)' }, hint: 'When a request carries its own Claude login or API key instead of a gateway key.' },
  { key: 'subscriptions.extra_usage', label: 'When a plan window runs out', type: 'select', choices: { avoid: 'Avoid extra usage (wait for the reset or fail over)', allow: 'Allow extra usage (billed by Anthropic)' } },
  { key: 'routing.spillover', label: 'Spill-over', type: 'select', choices: { none: 'None', api_keys: 'Let API-key accounts serve Claude Code when the plans run out' } },
  { key: 'server.listen', label: 'Listen address', type: 'text', hint: 'host:port. A change takes effect after the gateway restarts. Anything but loopback needs client keys.' },
];

const getPath = (obj, path) => path.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);

function setPath(obj, path, value) {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] = o[k] && typeof o[k] === 'object' ? o[k] : {};
  o[keys[keys.length - 1]] = value;
}

function valuesOf(config) {
  const v = {};
  for (const s of SETTINGS) v[s.key] = getPath(config, s.key);
  return v;
}

export function Settings() {
  const doc = useLoad(() => get('/config'));
  const [values, setValues] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(null);
  const [reloadNote, setReloadNote] = useState(null);
  useEffect(() => {
    if (doc.data) setValues(valuesOf(doc.data.config));
  }, [doc.data]);
  useEvents((e) => {
    if (e.type === 'config_reloaded') setReloadNote('The configuration changed on disk and was reloaded.');
    if (e.type === 'config_rejected') setReloadNote(`A change to the configuration file was rejected: ${e.reason || 'invalid'}`);
  });

  if (doc.error && !doc.data) return html`<h1 tabindex="-1">Settings</h1><${ErrorText} error=${`Could not load the configuration: ${doc.error.message}`} />`;
  if (!doc.data || !values) return html`<h1 tabindex="-1">Settings</h1><${Loading} what="the configuration" />`;

  const original = valuesOf(doc.data.config);
  // The configuration document lists every key with its default, so a setting missing from it is one this gateway
  // does not have (e.g. the subscription policy before it lands): not offered, rather than refused on save.
  const offered = SETTINGS.filter((s) => original[s.key] !== undefined);
  const change = {};
  for (const s of offered) if (values[s.key] !== original[s.key] && values[s.key] !== undefined) setPath(change, s.key, values[s.key]);
  const dirty = Object.keys(change).length > 0;
  const known = offered.map((s) => s.key);

  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      await post('/config/validate', change);
      const result = await patch('/config', change);
      setSaved(result.restart_required && result.restart_required.length
        ? `Saved. Restart the gateway for ${result.restart_required.join(', ')} to take effect.`
        : 'Saved and applied.');
      await doc.reload();
    } catch (x) {
      setError(x);
    }
    setBusy(false);
  };
  const set = (key, value) => {
    setSaved(null);
    setValues({ ...values, [key]: value });
  };

  return html`<h1 tabindex="-1">Settings</h1>
    <p class="small muted">Stored in <code>${doc.data.path}</code>. Accounts and client keys have their own pages.</p>
    ${reloadNote ? html`<p class="notice" role="status">${reloadNote}</p>` : null}
    <form class="card settings" onSubmit=${save}>
      ${offered.map((s) => {
        const id = `set-${s.key.replace('.', '-')}`;
        const err = error && error.field === s.key ? error.message : null;
        if (s.type === 'checkbox') {
          return html`<div class=${`field checkbox${err ? ' invalid' : ''}`}>
            <input id=${id} type="checkbox" checked=${!!values[s.key]} onChange=${(e) => set(s.key, e.target.checked)} aria-describedby=${s.hint ? `${id}-hint` : undefined} />
            <label for=${id}>${s.label}</label>
            ${s.hint ? html`<p class="hint" id=${`${id}-hint`}>${s.hint}</p>` : null}
            ${err ? html`<p class="error-text" role="alert">${err}</p>` : null}
          </div>`;
        }
        return html`<${Field} id=${id} label=${s.label} hint=${s.hint} error=${err}>
          ${(a) => (s.type === 'select'
            ? html`<select ...${a} value=${values[s.key] ?? ''} onChange=${(e) => set(s.key, e.target.value)}>
                ${Object.entries(s.choices).map(([k, v]) => html`<option value=${k}>${v}</option>`)}
              </select>`
            : html`<input ...${a} type=${s.type} min=${s.min} value=${values[s.key] ?? ''}
                onInput=${(e) => set(s.key, s.type === 'number' ? (e.target.value === '' ? undefined : Number(e.target.value)) : e.target.value)} />`)}
        <//>`;
      })}
      <${ErrorText} error=${error && !known.includes(error.field) ? error : null} />
      ${saved ? html`<p class="notice" role="status">${saved}</p>` : null}
      <div class="actions left">
        <button type="submit" class="btn primary" disabled=${!dirty || busy}>${busy ? 'Saving…' : 'Save changes'}</button>
        <button type="button" class="btn" disabled=${!dirty || busy} onClick=${() => { setValues(original); setError(null); }}>Discard</button>
      </div>
    </form>`;
}
