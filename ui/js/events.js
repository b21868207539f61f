// The one live connection to the gateway: an EventSource on the admin API's event stream. Subscribers get every
// event; a synthetic `resync` event tells them to fetch their state again (after a reconnect, or when the gateway
// says this subscriber lagged and missed events).

import { API_BASE, get } from './api.js';

const TYPES = [
  'request_finished', 'account_state', 'login_started', 'login_completed', 'login_failed', 'config_reloaded',
  'config_rejected', 'client_key_created', 'client_key_revoked', 'usage', 'lagged',
];

const listeners = new Set();
const stateListeners = new Set();
let connection = 'connecting';

export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function subscribeState(listener) {
  stateListeners.add(listener);
  listener(connection);
  return () => stateListeners.delete(listener);
}

function emit(event) {
  for (const l of [...listeners]) {
    try {
      l(event);
    } catch (e) {
      console.error('event listener failed', e);
    }
  }
}

function setState(state) {
  if (state === connection) return;
  connection = state;
  for (const l of [...stateListeners]) l(state);
}

/** Opens the stream; returns a function that closes it for good. */
export function connectEvents() {
  let source = null;
  let stopped = false;
  let timer = null;
  let missedSome = false;

  const open = () => {
    if (stopped) return;
    source = new EventSource(`${API_BASE}/events`);
    source.onopen = () => {
      setState('open');
      if (missedSome) emit({ type: 'resync', reason: 'reconnected' });
      missedSome = false;
    };
    source.onerror = () => {
      missedSome = true;
      setState('reconnecting');
      // A dropped connection is retried by EventSource itself; a refused one (an error status) closes it for good,
      // so find out why: a 401 means the session ended (the API client reports it), anything else is retried.
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        clearTimeout(timer);
        timer = setTimeout(probe, 2000);
      }
    };
    for (const type of TYPES) {
      source.addEventListener(type, (message) => {
        let data;
        try {
          data = JSON.parse(message.data);
        } catch {
          return;
        }
        if (!data || typeof data !== 'object') return;
        if (!data.type) data.type = type;
        emit(data);
        if (type === 'lagged') emit({ type: 'resync', reason: 'lagged' });
      });
    }
  };

  const probe = async () => {
    if (stopped) return;
    try {
      await get('/status');
    } catch (e) {
      if (e.status === 401) return;
      timer = setTimeout(probe, 3000);
      return;
    }
    open();
  };

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
    setState('connecting');
  };
}
