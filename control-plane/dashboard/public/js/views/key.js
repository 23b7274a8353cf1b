// A key's page (its fields, spend, revoke, calls) and a run's page (every key with one label).
import { api, isAbort, query } from '../api.js';
import { auditSection } from '../audit.js';
import { h } from '../dom.js';
import { dateTimeText, expiryText, usd } from '../format.js';
import { keysTable, revokeWithConfirmation, runHref, spendMeter, statusBadge } from '../keys-table.js';
import { announce, messageBox } from '../status.js';

/** @typedef {import('../keys-table.js').Key} Key */

/** @param {{main: HTMLElement, id: string, signal: AbortSignal}} ctx */
export function keyView({ main, id, signal }) {
  document.title = `Key ${id} — Keybrake`;
  const message = messageBox('error');
  const details = h('div', { class: 'key-details' }, h('p', { class: 'muted' }, 'Loading…'));
  const audit = auditSection({ scope: { key_id: id }, signal, showKey: false });
  main.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: '#/keys' }, 'Keys'), ' / ', h('span', { class: 'mono' }, id)),
    h('h1', { tabindex: '-1' }, 'Key ', h('span', { class: 'mono' }, id)),
    message.el,
    details,
    audit.el,
  );

  /** @param {Key} key */
  function render(key) {
    const meter = spendMeter();
    meter.update(key);
    const revoke = h('button', { type: 'button', class: 'danger' }, 'Revoke key');
    revoke.hidden = key.status !== 'active';
    revoke.addEventListener('click', async () => {
      try {
        const updated = await revokeWithConfirmation(key);
        if (updated === null) return;
        render(updated);
        message.show(`Revoked ${updated.id}.`, 'success');
        announce(`Key ${updated.id} revoked`);
      } catch (error) {
        message.show(`Could not revoke: ${error instanceof Error ? error.message : String(error)}`, 'error');
      }
    });
    /** @type {[string, unknown][]} */
    const rows = [
      ['Status', statusBadge(key.status)],
      ['Label', key.label ? h('a', { href: runHref(key.label) }, key.label) : h('span', { class: 'muted' }, '(no label)')],
      ['Vendor', key.vendor],
      ['Allowed endpoints', h('ul', { class: 'plain mono' }, key.allowed_endpoints.map((e) => h('li', null, e)))],
      ['Spend against cap', meter.el],
      ['Daily cap', key.daily_cap_micros ? usd(key.daily_cap_micros) : '—'],
      ['Budget', key.budget_micros ? usd(key.budget_micros) : '—'],
      ['Per-call estimate', key.per_call_estimate_micros ? usd(key.per_call_estimate_micros) : '—'],
      ['Spent', usd(key.spent_micros)],
      ['Leased to data planes', usd(key.leased_micros)],
      ['At risk', usd(key.at_risk_micros)],
      ['Remaining', usd(key.remaining_micros)],
      ['Created', dateTimeText(key.created_at)],
      ['Expires', key.expires_at ? `${dateTimeText(key.expires_at)} (${expiryText(key)})` : '—'],
      ['Revoked', key.revoked_at ? dateTimeText(key.revoked_at) : '—'],
    ];
    details.replaceChildren(h('dl', { class: 'fields' }, rows.map(([name, value]) => [h('dt', null, name), h('dd', null, value)])), revoke);
  }

  void (async () => {
    try {
      render(await api('GET', `/vault/keys/${encodeURIComponent(id)}`, { signal }));
    } catch (error) {
      if (isAbort(error)) return;
      details.replaceChildren();
      message.show(`Could not read key ${id}: ${error instanceof Error ? error.message : String(error)}`);
    }
  })();
  void audit.reload();
}

/** @param {{main: HTMLElement, label: string, signal: AbortSignal}} ctx */
export function runView({ main, label, signal }) {
  document.title = `Run ${label} — Keybrake`;
  const message = messageBox('error');
  const totals = h('p', { class: 'totals' }, 'Loading…');
  const table = keysTable({
    caption: `Keys of run ${label}`,
    onRevoked: (key) => {
      message.show(`Revoked ${key.id}.`, 'success');
      announce(`Key ${key.id} revoked`);
    },
    onError: (text) => message.show(text, 'error'),
  });
  const audit = auditSection({ scope: { label }, signal, showKey: true });
  main.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: '#/keys' }, 'Keys'), ' / run'),
    h('h1', { tabindex: '-1' }, 'Run ', h('span', { class: 'mono' }, label)),
    message.el,
    h('section', { 'aria-labelledby': 'run-keys-title' }, h('h2', { id: 'run-keys-title' }, 'Keys'), totals, table.el),
    audit.el,
  );

  void (async () => {
    try {
      /** @type {Key[]} */
      const keys = [];
      let cursor = null;
      do {
        const body = await api('GET', `/vault/keys${query({ label, limit: 1000, cursor })}`, { signal });
        keys.push(...body.keys);
        cursor = body.next_cursor;
      } while (cursor !== null && keys.length < 10_000);
      table.setKeys(keys);
      const sum = (/** @type {(k: Key) => number} */ pick) => keys.reduce((total, k) => total + pick(k), 0);
      const active = keys.filter((k) => k.status === 'active').length;
      totals.textContent =
        `${keys.length} key${keys.length === 1 ? '' : 's'} (${active} active): spent ${usd(sum((k) => k.spent_micros))} of ${usd(sum((k) => k.cap_micros))}` +
        `, at risk ${usd(sum((k) => k.at_risk_micros))}, remaining ${usd(sum((k) => k.remaining_micros))}.`;
    } catch (error) {
      if (isAbort(error)) return;
      totals.textContent = '';
      message.show(`Could not list the run's keys: ${error instanceof Error ? error.message : String(error)}`);
    }
  })();
  void audit.reload();
}
