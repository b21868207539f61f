// Time-series charts with uPlot (loaded as a classic script before the modules: window.uPlot).

import { html, useEffect, useRef, useState } from './lib.js';

/** Whether the system asks for dark colours (charts read their colours from CSS, so they redraw on a change). */
function useDarkScheme() {
  const query = window.matchMedia('(prefers-color-scheme: dark)');
  const [dark, setDark] = useState(query.matches);
  useEffect(() => {
    const onChange = () => setDark(query.matches);
    query.addEventListener('change', onChange);
    return () => query.removeEventListener('change', onChange);
  }, []);
  return dark;
}

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/**
 * `times`: unix seconds; `series`: [{label, values, color (CSS variable name), scale: 'left'|'right'}].
 * `summary` is the accessible description of what the chart shows.
 */
export function TimeChart({ times, series, summary, height = 220, bars }) {
  const box = useRef(null);
  const plot = useRef(null);
  const dark = useDarkScheme();
  const shape = series.map((s) => `${s.label}:${s.scale || 'left'}`).join('|');

  useEffect(() => {
    const el = box.current;
    const UPlot = window.uPlot;
    if (!el || !UPlot) return undefined;
    const axisColor = cssVar('--fg-muted', '#555');
    const gridColor = cssVar('--border', '#ddd');
    const hasRight = series.some((s) => s.scale === 'right');
    const opts = {
      width: Math.max(280, el.clientWidth),
      height,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor } },
        { scale: 'left', stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor }, size: 50 },
        ...(hasRight ? [{ scale: 'right', side: 1, stroke: axisColor, grid: { show: false }, ticks: { stroke: gridColor }, size: 55 }] : []),
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          scale: s.scale || 'left',
          stroke: cssVar(s.color, '#3553c9'),
          width: 2,
          fill: bars ? cssVar(s.color, '#3553c9') + '55' : undefined,
          paths: bars && UPlot.paths && UPlot.paths.bars ? UPlot.paths.bars({ size: [0.7, 40] }) : undefined,
          points: { show: false },
        })),
      ],
    };
    const u = new UPlot(opts, [times, ...series.map((s) => s.values)], el);
    plot.current = u;
    const observer = new ResizeObserver(() => {
      const width = Math.max(280, el.clientWidth);
      if (width !== u.width) u.setSize({ width, height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      if (plot.current) plot.current.destroy();
      plot.current = null;
      el.textContent = '';
    };
  }, [shape, height, bars, dark]);

  useEffect(() => {
    if (plot.current) plot.current.setData([times, ...series.map((s) => s.values)]);
  }, [times, series]);

  if (!window.uPlot) return html`<p class="error-text">The chart library did not load.</p>`;
  return html`<figure class="chart">
    <div class="chart-box" ref=${box} role="img" aria-label=${summary}></div>
    <figcaption class="sr-only">${summary}</figcaption>
  </figure>`;
}

/** Usage rows keyed by hour/day (RFC 3339) → uPlot columns, with empty buckets filled with zeros. */
export function bucketize(rows, fromIso, toIso, stepSecs, pick) {
  const from = Math.floor(new Date(fromIso).getTime() / 1000 / stepSecs) * stepSecs;
  const to = Math.floor(new Date(toIso).getTime() / 1000 / stepSecs) * stepSecs;
  const index = new Map();
  for (const row of rows) {
    const t = Math.floor(new Date(row.key).getTime() / 1000 / stepSecs) * stepSecs;
    if (!Number.isNaN(t)) index.set(t, row);
  }
  const times = [];
  const columns = pick.map(() => []);
  for (let t = from; t <= to && times.length < 2000; t += stepSecs) {
    times.push(t);
    const row = index.get(t);
    pick.forEach((f, i) => columns[i].push(row ? f(row) : 0));
  }
  return { times, columns };
}
