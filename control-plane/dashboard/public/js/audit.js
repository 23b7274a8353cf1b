// A key's or a run's calls from the audit trail: filters, a paged table and the spend chart.
import { api, isAbort, query } from './api.js';
import { spendChart } from './chart.js';
import { field, h, scrollable } from './dom.js';
import { dateTimeText, localInputToIso, usd, vendorAmount } from './format.js';
import { keyHref } from './keys-table.js';
import { messageBox } from './status.js';

const PAGE = 50;
/** The chart reads at most this many pages of 1,000 calls. */
const CHART_PAGES = 5;

/**
 * @typedef {{id: string, ts: string | null, key_id: string | null, label: string | null, vendor: string, method: string, path: string,
 *   status: number, decision: string, reason: string | null, amount: number | null, currency: string | null, usd_micros: number,
 *   idempotency_key: string | null, vendor_request_id: string | null, vendor_object_id: string | null, stripe_charge_id: string | null,
 *   replayed: boolean, dataplane_id: string, latency_ms: number}} AuditEntry
 */

/**
 * @param {{scope: {key_id: string} | {label: string}, signal: AbortSignal, showKey: boolean}} options
 */
export function auditSection({ scope, signal, showKey }) {
  const idem = field({ label: 'Idempotency key', control: h('input', { type: 'text', name: 'idempotency_key', autocomplete: 'off', spellcheck: 'false' }) });
  const since = field({ label: 'Since', control: h('input', { type: 'datetime-local', name: 'since', step: '1' }) });
  const until = field({ label: 'Until', control: h('input', { type: 'datetime-local', name: 'until', step: '1' }) });
  const message = messageBox('error');
  const chart = spendChart();
  const tbody = h('tbody');
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more calls');
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh calls');
  const heads = ['Time', 'Decision', 'Status', 'Call', ...(showKey ? ['Key'] : []), 'Amount', 'Cost', 'Reason', 'Idempotency key', 'Vendor object', 'Data plane', 'Latency'];
  const table = /** @type {HTMLTableElement} */ (
    h('table', { class: 'audit' }, h('caption', { class: 'visually-hidden' }, 'Calls'), h('thead', null, h('tr', null, heads.map((t) => h('th', { scope: 'col' }, t)))), tbody)
  );
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter calls' },
    idem.wrapper,
    since.wrapper,
    until.wrapper,
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit' }, 'Apply'), h('button', { type: 'reset', class: 'secondary' }, 'Clear')),
  );
  const el = h(
    'section',
    { class: 'audit-section', 'aria-labelledby': 'calls-title' },
    h('h2', { id: 'calls-title' }, 'Calls'),
    form,
    message.el,
    h('h3', null, 'Spend over time'),
    chart.el,
    h('div', { class: 'toolbar' }, summary, refresh),
    scrollable('Calls', table),
    more,
  );

  /** @type {string | null} */
  let cursor = null;
  let shown = 0;
  let generation = 0;

  function filters() {
    return {
      ...scope,
      idempotency_key: /** @type {HTMLInputElement} */ (idem.control).value.trim(),
      since: localInputToIso(/** @type {HTMLInputElement} */ (since.control).value),
      until: localInputToIso(/** @type {HTMLInputElement} */ (until.control).value),
    };
  }

  /** @param {boolean} reset */
  async function loadPage(reset) {
    const mine = reset ? ++generation : generation;
    const body = await api('GET', `/audit${query({ ...filters(), limit: PAGE, cursor: reset ? null : cursor })}`, { signal });
    if (mine !== generation) return;
    if (reset) {
      tbody.replaceChildren();
      shown = 0;
    }
    for (const entry of /** @type {AuditEntry[]} */ (body.entries)) tbody.appendChild(entryRow(entry, showKey));
    shown += body.entries.length;
    cursor = body.next_cursor;
    more.hidden = cursor === null;
    summary.textContent = shown === 0 ? 'No calls recorded for these filters.' : `${shown} call${shown === 1 ? '' : 's'} shown${cursor === null ? '' : ' (more available)'}, newest first.`;
  }

  async function loadChart() {
    // The chart covers the time window, whatever the idempotency-key filter.
    const window = { ...filters(), idempotency_key: '' };
    /** @type {AuditEntry[]} */
    const entries = [];
    let next = null;
    let pages = 0;
    do {
      const body = await api('GET', `/audit${query({ ...window, limit: 1000, cursor: next })}`, { signal });
      entries.push(...body.entries);
      next = body.next_cursor;
      pages += 1;
    } while (next !== null && pages < CHART_PAGES);
    const untilMs = window.until ? Date.parse(window.until) : Date.now();
    chart.show(entries, { endMs: Math.min(untilMs, Date.now()), truncated: next !== null });
  }

  async function reload() {
    message.show(null);
    try {
      await Promise.all([loadPage(true), loadChart()]);
    } catch (error) {
      if (isAbort(error)) return;
      message.show(`Could not read the audit trail: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void reload();
  });
  form.addEventListener('reset', () => setTimeout(() => void reload(), 0));
  refresh.addEventListener('click', () => void reload());
  more.addEventListener('click', async () => {
    try {
      await loadPage(false);
    } catch (error) {
      if (!isAbort(error)) message.show(`Could not read more calls: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  signal.addEventListener('abort', () => chart.destroy(), { once: true });

  return { el, reload };
}

/** @param {AuditEntry} e @param {boolean} showKey */
function entryRow(e, showKey) {
  const object = e.vendor_object_id ?? e.stripe_charge_id;
  return h(
    'tr',
    { 'data-audit-id': e.id, class: `call-${e.decision}` },
    h('td', { class: 'nowrap' }, e.ts ? h('time', { datetime: e.ts }, dateTimeText(e.ts)) : '—'),
    h('td', null, h('span', { class: `badge decision-${e.decision}` }, e.decision)),
    h('td', { class: 'num' }, String(e.status)),
    h('td', { class: 'mono nowrap call' }, `${e.method} ${e.path}`),
    showKey ? h('td', null, e.key_id ? h('a', { href: keyHref(e.key_id), class: 'mono' }, e.key_id) : '—') : null,
    h('td', { class: 'num amount' }, e.amount === null ? '—' : vendorAmount(e.amount, e.currency ?? '')),
    h('td', { class: 'num cost' }, usd(e.usd_micros)),
    h('td', { class: 'mono' }, e.reason ?? ''),
    h('td', { class: 'mono idempotency-key' }, e.idempotency_key ?? ''),
    h('td', { class: 'mono' }, object ?? '', e.replayed ? h('span', { class: 'badge replayed' }, 'replayed') : null),
    h('td', { class: 'mono' }, e.dataplane_id),
    h('td', { class: 'num' }, `${e.latency_ms} ms`),
  );
}
