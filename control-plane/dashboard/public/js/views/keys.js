// The keys page: filters (kept in the URL), the table, paging, and a quiet auto-refresh.
import { api, isAbort, query, sleep } from '../api.js';
import { field, h, select } from '../dom.js';
import { keysTable } from '../keys-table.js';
import { announce, messageBox } from '../status.js';

const PAGE = 50;
const REFRESH_MS = 5000;
/**
 * With a vendor or status filter the API may answer a page with fewer keys than asked (it looks
 * at a bounded number of keys per call) and a cursor: follow it, at most this many calls a time.
 */
const MAX_CALLS = 10;

/** @param {{main: HTMLElement, query: URLSearchParams, signal: AbortSignal}} ctx */
export function keysView({ main, query: params, signal }) {
  document.title = 'Keys — Keybrake';
  const filterValues = {
    label: params.get('label') ?? '',
    label_prefix: params.get('label_prefix') ?? '',
    vendor: params.get('vendor') ?? '',
    status: params.get('status') ?? '',
  };
  const label = field({ label: 'Label', control: h('input', { type: 'text', name: 'label', value: filterValues.label, autocomplete: 'off', spellcheck: 'false' }) });
  const prefix = field({ label: 'Label starts with', control: h('input', { type: 'text', name: 'label_prefix', value: filterValues.label_prefix, autocomplete: 'off', spellcheck: 'false' }) });
  const vendor = field({ label: 'Vendor', control: select({ name: 'vendor' }, [['', 'Any'], ['stripe', 'Stripe'], ['twilio', 'Twilio'], ['resend', 'Resend']], filterValues.vendor) });
  const status = field({ label: 'Status', control: select({ name: 'status' }, [['', 'Any'], ['active', 'Active'], ['expired', 'Expired'], ['revoked', 'Revoked']], filterValues.status) });
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter keys' },
    label.wrapper,
    prefix.wrapper,
    vendor.wrapper,
    status.wrapper,
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit' }, 'Apply'), h('a', { href: '#/keys', class: 'button secondary' }, 'Clear')),
  );
  const message = messageBox('error');
  const summary = h('p', { class: 'summary' });
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more keys');
  const table = keysTable({
    caption: 'Vault keys',
    onRevoked: (key) => {
      message.show(`Revoked ${key.id}.`, 'success');
      announce(`Key ${key.id} revoked`);
    },
    onError: (text) => message.show(text, 'error'),
  });
  main.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Keys'), h('a', { href: '#/issue', class: 'button' }, 'Issue a key')),
    form,
    message.el,
    h('div', { class: 'toolbar' }, summary, refresh),
    table.el,
    more,
  );

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(/** @type {HTMLFormElement} */ (form));
    /** @type {Record<string, string>} */
    const next = {};
    for (const name of ['label', 'label_prefix', 'vendor', 'status']) next[name] = String(data.get(name) ?? '').trim();
    const hash = `#/keys${query(next)}`;
    if (location.hash === hash) void load();
    else location.hash = hash;
  });

  /** @type {import('../keys-table.js').Key[]} */
  let keys = [];
  /** @type {string | null} */
  let cursor = null;
  let busy = false;

  /**
   * Keys from `from` on (null: the start) until `want` are found or the listing ends, following
   * the API's cursor (at most MAX_CALLS calls).
   * @param {string | null} from
   * @param {number} want
   */
  async function fetchKeys(from, want) {
    /** @type {import('../keys-table.js').Key[]} */
    const found = [];
    let next = from;
    for (let calls = 0; calls < MAX_CALLS && found.length < want; calls++) {
      const body = await api('GET', `/vault/keys${query({ ...filterValues, limit: Math.min(1000, want - found.length), cursor: next })}`, { signal });
      found.push(...body.keys);
      next = body.next_cursor;
      if (next === null) break;
    }
    return { found, next };
  }

  /** Reloads as many keys as are shown (at least one page), so paging survives a refresh. */
  async function load() {
    if (busy) return;
    busy = true;
    try {
      const { found, next } = await fetchKeys(null, Math.min(1000, Math.max(PAGE, keys.length)));
      keys = found;
      cursor = next;
      render();
      if (message.el.classList.contains('error')) message.show(null);
    } catch (error) {
      if (!isAbort(error)) message.show(`Could not list keys: ${error instanceof Error ? error.message : String(error)}`, 'error');
    } finally {
      busy = false;
    }
  }

  function render() {
    table.setKeys(keys);
    more.hidden = cursor === null;
    summary.textContent = `${keys.length} key${keys.length === 1 ? '' : 's'}${cursor === null ? '' : ' (more available)'} · updated ${new Date().toLocaleTimeString()}`;
  }

  more.addEventListener('click', async () => {
    if (cursor === null || busy) return;
    busy = true;
    try {
      const { found, next } = await fetchKeys(cursor, PAGE);
      keys = [...keys, ...found];
      cursor = next;
      render();
    } catch (error) {
      if (!isAbort(error)) message.show(`Could not list more keys: ${error instanceof Error ? error.message : String(error)}`, 'error');
    } finally {
      busy = false;
    }
  });
  refresh.addEventListener('click', () => void load());

  void (async () => {
    await load();
    // Spend moves as data planes report (about once a second): refresh while the tab is visible.
    try {
      for (;;) {
        await sleep(REFRESH_MS, signal);
        if (!document.hidden && document.querySelector('dialog[open]') === null) await load();
      }
    } catch (error) {
      if (!isAbort(error)) throw error;
    }
  })();
}
