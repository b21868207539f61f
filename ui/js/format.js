// Formatting of numbers, money, times and durations for display.

const int = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

export const fmtInt = (n) => (n === null || n === undefined ? '–' : int.format(n));
export const fmtTokens = (n) => (n === null || n === undefined ? '–' : n < 10000 ? int.format(n) : compact.format(n));
export const fmtPercent = (f) => (typeof f === 'number' ? `${Math.round(f * 100)} %` : '–');

export function fmtUsd(n) {
  if (n === null || n === undefined) return '–';
  const digits = n !== 0 && Math.abs(n) < 0.01 ? 4 : 2;
  return `$${n.toFixed(digits)}`;
}

export const fmtMs = (n) => (n === null || n === undefined ? '–' : n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`);

export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function fmtDateTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** "4m 05s", "2h 03m", "3d 4h" for a number of milliseconds. */
export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** "in 2h 03m" / "5m 00s ago". */
export function fmtRelative(iso, now = Date.now()) {
  if (!iso) return '–';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  return t >= now ? `in ${fmtDuration(t - now)}` : `${fmtDuration(now - t)} ago`;
}

/** 00:00 UTC today as RFC 3339 (the usage API's `since`): the gateway's "today" (status, client keys) is the UTC day. */
export function startOfToday(now = new Date()) {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString();
}

export const sumTokens = (t) =>
  (t?.input_tokens || 0) + (t?.output_tokens || 0) + (t?.cache_creation_tokens || 0) + (t?.cache_read_tokens || 0);

/** "a, b , c" → ["a","b","c"]. */
export const splitList = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);

export const CLIENT_KINDS = { claude_code: 'Claude Code', anthropic_sdk: 'Anthropic SDK', openai: 'OpenAI client', other: 'Other' };
export const kindLabel = (k) => CLIENT_KINDS[k] || k || '–';
