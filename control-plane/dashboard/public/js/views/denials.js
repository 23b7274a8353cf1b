// Live denials: polls the newest 50 audit records every 2 s and keeps the refused ones.
import { ApiError, api, isAbort, sleep } from '../api.js';
import { h, scrollable } from '../dom.js';
import { timeText } from '../format.js';
import { keyHref, runHref } from '../keys-table.js';
import { announce, messageBox } from '../status.js';

const POLL_MS = 2000;
const KEEP = 200;

/** @param {{main: HTMLElement, signal: AbortSignal}} ctx */
export function denialsView({ main, signal }) {
  document.title = 'Live denials — Keybrake';
  const message = messageBox('error');
  const state = h('p', { class: 'summary' }, 'Starting…');
  const pause = h('button', { type: 'button', class: 'secondary', 'aria-pressed': 'false' }, 'Pause');
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty' }, 'No denials seen yet.');
  const heads = ['Time', 'Reason', 'Status', 'Key', 'Label', 'Vendor', 'Call', 'Data plane'];
  const table = /** @type {HTMLTableElement} */ (
    h('table', { class: 'denials' }, h('caption', { class: 'visually-hidden' }, 'Denied calls, newest first'), h('thead', null, h('tr', null, heads.map((t) => h('th', { scope: 'col' }, t)))), tbody)
  );
  main.replaceChildren(
    h('h1', { tabindex: '-1' }, 'Live denials'),
    h('p', null, `Calls the data planes refused, from the newest audit records, checked every ${POLL_MS / 1000} s.`),
    message.el,
    h('div', { class: 'toolbar' }, state, pause),
    scrollable('Denied calls', table),
    empty,
  );

  /** @type {Set<string>} */
  const seen = new Set();
  let paused = false;
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    state.textContent = paused ? 'Paused.' : 'Resuming…';
  });

  async function poll() {
    const body = await api('GET', '/audit?limit=50', { signal });
    /** @type {import('../audit.js').AuditEntry[]} */
    const fresh = body.entries.filter((/** @type {any} */ e) => e.decision === 'denied' && !seen.has(e.id));
    const firstPoll = seen.size === 0;
    // Newest first in the answer: insert oldest first at the top to keep the order.
    for (const entry of fresh.reverse()) {
      seen.add(entry.id);
      tbody.insertBefore(row(entry, !firstPoll), tbody.firstChild);
    }
    while (tbody.children.length > KEEP) tbody.lastElementChild?.remove();
    empty.hidden = tbody.children.length > 0;
    state.textContent = `Last checked ${new Date().toLocaleTimeString()} · ${tbody.children.length} denial${tbody.children.length === 1 ? '' : 's'} shown.`;
    if (fresh.length > 0) announce(`${fresh.length} new denial${fresh.length === 1 ? '' : 's'}`);
  }

  void (async () => {
    try {
      for (;;) {
        if (!paused && !document.hidden) {
          try {
            await poll();
            message.show(null);
          } catch (error) {
            if (isAbort(error)) throw error;
            message.show(`Could not read the audit trail: ${error instanceof Error ? error.message : String(error)}`);
            if (error instanceof ApiError && error.status === 403) {
              state.textContent = 'Stopped: this token may not read the audit trail (an admin or auditor token can).';
              return;
            }
          }
        }
        await sleep(POLL_MS, signal);
      }
    } catch (error) {
      if (!isAbort(error)) throw error;
    }
  })();
}

/** @param {import('../audit.js').AuditEntry} e @param {boolean} highlight */
function row(e, highlight) {
  return h(
    'tr',
    { 'data-audit-id': e.id, class: highlight ? 'new' : null },
    h('td', { class: 'nowrap' }, e.ts ? h('time', { datetime: e.ts, title: new Date(e.ts).toLocaleString() }, timeText(e.ts)) : '—'),
    h('td', { class: 'mono reason' }, e.reason ?? ''),
    h('td', { class: 'num status' }, String(e.status)),
    h('td', null, e.key_id ? h('a', { href: keyHref(e.key_id), class: 'mono' }, e.key_id) : h('span', { class: 'muted' }, '(unknown key)')),
    h('td', null, e.label ? h('a', { href: runHref(e.label) }, e.label) : ''),
    h('td', null, e.vendor),
    h('td', { class: 'mono nowrap' }, `${e.method} ${e.path}`),
    h('td', { class: 'mono' }, e.dataplane_id),
  );
}
