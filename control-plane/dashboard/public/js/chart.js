// Spend over time with uPlot (loaded as a classic script by index.html, global `uPlot`):
// the cumulative settled cost of allowed calls, as a step line.
import { h } from './dom.js';
import { timeText, usd } from './format.js';

/** @typedef {{ts: string | null, decision: string, usd_micros: number}} SpendEntry */

/**
 * The chart's data: [times in seconds, cumulative USD], starting from zero just before the
 * first allowed call and held until `end`.
 * @param {SpendEntry[]} entries any order
 * @param {number} endMs
 * @returns {{xs: number[], ys: number[], totalMicros: number, calls: number}}
 */
export function cumulativeSpend(entries, endMs) {
  const allowed = entries
    .filter((e) => e.decision === 'allowed' && e.ts !== null)
    .map((e) => ({ t: Date.parse(/** @type {string} */ (e.ts)), micros: e.usd_micros }))
    .sort((a, b) => a.t - b.t);
  /** @type {number[]} */ const xs = [];
  /** @type {number[]} */ const ys = [];
  let total = 0;
  const first = allowed[0];
  if (first !== undefined) {
    xs.push((first.t - 1000) / 1000);
    ys.push(0);
  }
  for (const { t, micros } of allowed) {
    total += micros;
    const x = t / 1000;
    if (xs.length > 0 && xs[xs.length - 1] === x) ys[ys.length - 1] = total / 1e6;
    else {
      xs.push(x);
      ys.push(total / 1e6);
    }
  }
  const last = xs[xs.length - 1];
  if (last !== undefined && endMs / 1000 > last) {
    xs.push(endMs / 1000);
    ys.push(total / 1e6);
  }
  return { xs, ys, totalMicros: total, calls: allowed.length };
}

/** A figure with the chart and a text summary (the canvas says nothing to a screen reader). */
export function spendChart() {
  const plotArea = h('div', { class: 'chart-area' });
  const summary = h('figcaption', { class: 'chart-summary' });
  const el = h('figure', { class: 'chart' }, plotArea, summary);
  /** @type {any} */
  let plot = null;
  const observer = new ResizeObserver(() => {
    if (plot !== null) plot.setSize(size());
  });
  observer.observe(plotArea);

  function size() {
    return { width: Math.max(280, plotArea.clientWidth), height: 220 };
  }

  return {
    el,
    /**
     * @param {SpendEntry[]} entries
     * @param {{endMs: number, truncated: boolean}} options
     */
    show(entries, { endMs, truncated }) {
      const { xs, ys, totalMicros, calls } = cumulativeSpend(entries, endMs);
      const uPlot = /** @type {any} */ (globalThis).uPlot;
      if (calls === 0) {
        destroyPlot();
        summary.textContent = 'No allowed calls in this window: nothing spent.';
        return;
      }
      const from = new Date(/** @type {number} */ (xs[1]) * 1000).toISOString();
      const to = new Date(/** @type {number} */ (xs[xs.length - 1]) * 1000).toISOString();
      summary.textContent =
        `${usd(totalMicros)} spent over ${calls} allowed call${calls === 1 ? '' : 's'}, ${timeText(from)} to ${timeText(to)}` +
        (truncated ? ' (only the newest calls are charted: narrow the time window to see older ones).' : '.');
      if (uPlot === undefined) {
        destroyPlot();
        plotArea.textContent = 'The chart library did not load.';
        return;
      }
      if (plot !== null) {
        plot.setData([xs, ys]);
        return;
      }
      plotArea.replaceChildren();
      plot = new uPlot(
        {
          ...size(),
          scales: { x: { time: true }, y: { range: (/** @type {any} */ _u, /** @type {number} */ _min, /** @type {number} */ max) => [0, max > 0 ? max * 1.1 : 1] } },
          series: [
            { value: (/** @type {any} */ _u, /** @type {number | null} */ v) => (v === null ? '—' : new Date(v * 1000).toLocaleString()) },
            {
              label: 'Spent',
              stroke: '#1d4ed8',
              width: 2,
              fill: 'rgba(29, 78, 216, 0.12)',
              paths: uPlot.paths.stepped({ align: 1 }),
              points: { show: false },
              value: (/** @type {any} */ _u, /** @type {number | null} */ v) => (v === null ? '—' : usd(Math.round(v * 1e6))),
            },
          ],
          axes: [
            { stroke: '#374151', grid: { stroke: '#e5e7eb' } },
            { stroke: '#374151', grid: { stroke: '#e5e7eb' }, size: 72, values: (/** @type {any} */ _u, /** @type {number[]} */ splits) => splits.map((v) => `$${v.toFixed(2)}`) },
          ],
          cursor: { drag: { x: false, y: false } },
        },
        [xs, ys],
        plotArea,
      );
    },
    destroy() {
      observer.disconnect();
      destroyPlot();
    },
  };

  function destroyPlot() {
    if (plot !== null) {
      plot.destroy();
      plot = null;
    }
  }
}
