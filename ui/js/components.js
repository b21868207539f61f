// Shared components: icons, copy button, dialogs, form fields, errors, state badges, plan-window bars, hooks.

import { html, useState, useEffect, useLayoutEffect, useRef, useCallback } from './lib.js';
import { subscribe } from './events.js';
import { fmtDuration, fmtPercent, fmtDateTime } from './format.js';

const ICONS = {
  copy: 'M8 8h11v13H8zM5 4h11v2H7v11H5z',
  check: 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z',
  close: 'M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19 12 13.4 17.6 19 19 17.6 13.4 12 19 6.4 17.6 5 12 10.6z',
  plus: 'M11 5h2v6h6v2h-6v6h-2v-6H5v-2h6z',
  pause: 'M7 5h4v14H7zm6 0h4v14h-4z',
  play: 'M8 5v14l11-7z',
  refresh: 'M17.7 6.3A8 8 0 1 0 20 12h-2a6 6 0 1 1-1.8-4.2L13 11h7V4z',
  download: 'M11 4h2v9l3.5-3.5 1.4 1.4L12 16.8l-5.9-5.9 1.4-1.4L11 13zM5 18h14v2H5z',
};

export function Icon({ name }) {
  return html`<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d=${ICONS[name]} /></svg>`;
}

/** Re-renders every `ms` milliseconds and returns the current time (for countdowns). */
export function useNow(ms = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

/** Runs `load` now and whenever `deps` change; `reload()` runs it again. Keeps the last data while reloading. */
export function useLoad(load, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await load();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    reload();
  }, [reload]);
  return { ...state, reload };
}

/** Calls `handler` for every live event (the latest handler, without resubscribing). */
export function useEvents(handler) {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => subscribe((e) => ref.current(e)), []);
}

/** Calls `fn` at most once per `ms` (trailing), for refetches triggered by bursts of events. */
export function useDebounced(fn, ms) {
  const ref = useRef(fn);
  ref.current = fn;
  const timer = useRef(null);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      ref.current();
    }, ms);
  }, [ms]);
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'offscreen';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

export function CopyButton({ text, label = 'Copy' }) {
  const [state, setState] = useState('idle');
  useEffect(() => {
    if (state === 'idle') return undefined;
    const id = setTimeout(() => setState('idle'), 2500);
    return () => clearTimeout(id);
  }, [state]);
  const onClick = async () => {
    try {
      await copyText(text);
      setState('copied');
    } catch {
      setState('failed');
    }
  };
  return html`<span class="copy">
    <button type="button" class="btn small" onClick=${onClick} aria-label=${label}>
      <${Icon} name=${state === 'copied' ? 'check' : 'copy'} /> ${state === 'copied' ? 'Copied' : 'Copy'}
    </button>
    <span class="sr-only" role="status">${state === 'copied' ? 'Copied to the clipboard' : state === 'failed' ? 'Copying failed: select the text and copy it by hand' : ''}</span>
    ${state === 'failed' ? html`<span class="error-text">Copy failed: select the text and copy it by hand.</span>` : null}
  </span>`;
}

let dialogCount = 0;

/**
 * A modal dialog on the native <dialog>: the rest of the page is inert while it is open (focus stays inside),
 * Escape closes it, and focus returns to the control that opened it.
 */
export function Dialog({ title, onClose, children, wide }) {
  const ref = useRef(null);
  const [id] = useState(() => `dialog-title-${++dialogCount}`);
  // A layout effect: the opener is whatever had the focus when the dialog was rendered, and the dialog is modal
  // before anything else can happen.
  useLayoutEffect(() => {
    const dialog = ref.current;
    const opener = document.activeElement;
    if (dialog && !dialog.open) dialog.showModal();
    const first = dialog && dialog.querySelector('[autofocus], input:not([type=hidden]), select, textarea, button:not(.dialog-close)');
    if (first) first.focus();
    return () => {
      if (dialog && dialog.open) dialog.close();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
    };
  }, []);
  const onCancel = (e) => {
    e.preventDefault();
    onClose();
  };
  return html`<dialog ref=${ref} class=${wide ? 'wide' : ''} aria-labelledby=${id} onCancel=${onCancel}>
    <div class="dialog-head">
      <h2 id=${id}>${title}</h2>
      <button type="button" class="btn icon-only dialog-close" onClick=${onClose} aria-label="Close"><${Icon} name="close" /></button>
    </div>
    <div class="dialog-body">${children}</div>
  </dialog>`;
}

/** "Are you sure?" naming what is affected; runs `onConfirm` (async), shows its error in words. */
export function ConfirmDialog({ title, message, confirmLabel, onConfirm, onClose }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <p>${message}</p>
    <${ErrorText} error=${error} />
    <div class="actions">
      <button type="button" class="btn" onClick=${onClose} autofocus>Cancel</button>
      <button type="button" class="btn danger" onClick=${confirm} disabled=${busy}>${busy ? 'Working…' : confirmLabel}</button>
    </div>
  <//>`;
}

/**
 * The words for a failed usage or request-log query (`what`: "usage", "the request log", …): recording switched off
 * (409 naming `usage.enabled`), a gateway without the endpoint (404), or the gateway's own message.
 */
export function usageErrorText(error, what) {
  if (error.status === 409 && error.field === 'usage.enabled') {
    return `Usage recording is off, so there is no ${what}: set usage.enabled to true in the configuration file and restart the gateway.`;
  }
  if (error.status === 404) return `This gateway does not record usage, so there is no ${what}.`;
  return `Could not load ${what}: ${error.message}`;
}

export function ErrorText({ error }) {
  if (!error) return null;
  const text = typeof error === 'string' ? error : error.message || String(error);
  return html`<p class="error-text" role="alert">${text}</p>`;
}

/** A labelled form control with an optional hint and the error for this field. */
export function Field({ id, label, hint, error, children }) {
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  const control = typeof children === 'function' ? children({ id, 'aria-describedby': describedBy, 'aria-invalid': error ? 'true' : undefined }) : children;
  return html`<div class=${`field${error ? ' invalid' : ''}`}>
    <label for=${id}>${label}</label>
    ${control}
    ${hint ? html`<p class="hint" id=${`${id}-hint`}>${hint}</p>` : null}
    ${error ? html`<p class="error-text" id=${`${id}-error`} role="alert">${error}</p>` : null}
  </div>`;
}

const STATE_LABELS = {
  active: 'Active',
  cooling_down: 'Cooling down',
  needs_login: 'Needs login',
  error: 'Error',
  disabled: 'Disabled',
  missing_credential: 'Missing credential',
  circuit_open: 'Paused after failures',
  refreshing: 'Refreshing login',
};

const STATE_TONES = {
  active: 'ok', cooling_down: 'warn', needs_login: 'warn', error: 'bad', disabled: 'muted',
  missing_credential: 'bad', circuit_open: 'warn', refreshing: 'info',
};

/** The account's state; cooling down shows a live countdown to the upstream's reset. */
export function StateBadge({ account, now }) {
  const state = account.enabled === false ? 'disabled' : account.state;
  let text = STATE_LABELS[state] || state;
  if ((state === 'cooling_down' || state === 'circuit_open') && account.cooldown_until) {
    const left = new Date(account.cooldown_until).getTime() - now;
    text = left > 0 ? `${text} · ${fmtDuration(left)}` : `${text} · ending`;
  }
  return html`<span class=${`badge ${STATE_TONES[state] || 'muted'}`} data-state=${state}>${text}</span>`;
}

const WINDOW_NAMES = { five_hour: '5-hour window', seven_day: '7-day window' };

function windowLabel(name) {
  if (WINDOW_NAMES[name]) return WINDOW_NAMES[name];
  const m = /^(\d+)([hd])(?:_(.+))?$/.exec(name);
  if (m) return `${m[1]}-${m[2] === 'h' ? 'hour' : 'day'} window${m[3] ? ` (${m[3]})` : ''}`;
  return name;
}

function limitRows(windows) {
  const rows = [];
  for (const [key, label] of [['requests', 'Requests'], ['tokens', 'Tokens'], ['input_tokens', 'Input tokens'], ['output_tokens', 'Output tokens']]) {
    const l = windows[key];
    if (l && typeof l.limit === 'number' && l.limit > 0 && typeof l.remaining === 'number') {
      rows.push({ name: key, label: `${label} per minute`, utilization: 1 - l.remaining / l.limit, reset: l.reset, detail: `${l.remaining} of ${l.limit} left` });
    }
  }
  return rows;
}

/** The plan windows (5h, 7d, any other by name) and API rate limits as meters with their reset times. */
export function WindowBars({ windows, now, compact }) {
  if (!windows) return html`<p class="muted small">No plan or rate-limit data yet (it arrives with the first answer).</p>`;
  const rows = [];
  if (windows.five_hour) rows.push({ name: 'five_hour', ...windows.five_hour });
  if (windows.seven_day) rows.push({ name: 'seven_day', ...windows.seven_day });
  for (const [name, w] of Object.entries(windows.other_windows || {})) rows.push({ name, ...w });
  rows.push(...limitRows(windows));
  if (rows.length === 0) return html`<p class="muted small">No plan windows reported.</p>`;
  return html`<ul class=${`windows${compact ? ' compact' : ''}`}>
    ${windows.warning ? html`<li class="warn small" data-warning="near-limit"><strong class="warn-text">Near a plan limit</strong> (the upstream says <code>allowed_warning</code>)</li>` : null}
    ${rows.map((w) => {
      const used = typeof w.utilization === 'number' ? Math.min(1, Math.max(0, w.utilization)) : null;
      const warn = w.status && w.status !== 'allowed';
      const label = w.label || windowLabel(w.name);
      return html`<li class=${warn ? 'warn' : ''}>
        <div class="window-head">
          <span>${label}</span>
          <span class="muted">${used === null ? '' : fmtPercent(used)}${w.detail ? ` · ${w.detail}` : ''}</span>
        </div>
        ${used === null ? null : html`<meter min="0" max="1" low="0.7" high="0.9" optimum="0" value=${used} aria-label=${`${label} used`}></meter>`}
        <div class="small muted">
          ${w.status && w.status !== 'allowed' ? html`<strong class="warn-text">${w.status.replaceAll('_', ' ')}</strong> · ` : null}
          ${w.reset ? html`resets ${new Date(w.reset).getTime() > now ? `in ${fmtDuration(new Date(w.reset).getTime() - now)}` : 'now'} (${fmtDateTime(w.reset)})` : null}
        </div>
      </li>`;
    })}
    ${windows.overage_status ? html`<li class="small muted">Extra usage: ${windows.overage_status}${windows.overage_disabled_reason ? ` (${windows.overage_disabled_reason})` : ''}</li>` : null}
  </ul>`;
}

export function Loading({ what }) {
  return html`<p class="muted" role="status">Loading ${what}…</p>`;
}
