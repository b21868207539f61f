// The admin API client. Every call sends the session cookie (same origin) and, when it changes something, the
// CSRF header the gateway requires of cookie-authenticated requests. Errors become ApiError with the gateway's
// own message, so every failure can be shown in words.

export const API_BASE = '/admin/api/v1';

export class ApiError extends Error {
  constructor(status, type, message, field) {
    super(message);
    this.status = status;
    this.type = type;
    this.field = field || null;
  }
}

let unauthorizedHandler = () => {};

/** Called with the error whenever the API answers 401 outside the sign-in calls (the session ended). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export const UNREACHABLE =
  'The gateway is not answering: it may be restarting or stopped. Start it again with `llm-gateway server`.';

export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' }, cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD') init.headers['x-llm-gateway-csrf'] = '1';
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API_BASE + path, init);
  } catch {
    throw new ApiError(0, 'unreachable', UNREACHABLE);
  }
  const text = await response.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const detail = data && typeof data.error === 'object' && data.error ? data.error : {};
    const message = detail.message || `The gateway answered ${response.status} ${response.statusText}`.trim();
    const error = new ApiError(response.status, detail.type || `http_${response.status}`, message, detail.field);
    if (response.status === 401 && !path.startsWith('/session')) unauthorizedHandler(error);
    throw error;
  }
  return data;
}

const primed = new Map();

/** Keeps an answer just fetched (the sign-in check's status) for the page that asks for it next, once. */
export function prime(path, data) {
  primed.set(path, { answer: Promise.resolve(data), at: Date.now() });
}

/**
 * Starts a GET now, for the page that asks for it next (once, within 5 s): the first page's data is fetched while
 * the session is being checked instead of after it.
 */
export function prefetch(path) {
  const answer = api('GET', path);
  answer.catch(() => {}); // the page that takes it handles the error; one never taken is no error
  primed.set(path, { answer, at: Date.now() });
}

export const get = (path) => {
  const hit = primed.get(path);
  primed.delete(path);
  if (hit && Date.now() - hit.at < 5000) return hit.answer;
  return api('GET', path);
};
export const post = (path, body) => api('POST', path, body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

/** Builds a query string from the defined, non-empty values of `params`. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
