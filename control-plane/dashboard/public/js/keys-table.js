// The keys table: one row per key, updated in place (focus survives a refresh), revoke buttons
// that ask first. Never holds a vault key: the API does not return one after issuance.
import { api } from './api.js';
import { confirmDialog } from './dialog.js';
import { h, scrollable } from './dom.js';
import { expiryText, usd } from './format.js';

/** @typedef {{id: string, vendor: string, label: string, status: string, allowed_endpoints: string[], cap_micros: number, spent_micros: number, leased_micros: number, at_risk_micros: number, remaining_micros: number, created_at: string | null, expires_at: string | null, revoked_at: string | null, daily_cap_micros: number, budget_micros: number, per_call_estimate_micros: number}} Key */

/** `#/keys/<id>` @param {string} id */
export const keyHref = (id) => `#/keys/${encodeURIComponent(id)}`;
/** `#/runs/<label>` @param {string} label */
export const runHref = (label) => `#/runs/${encodeURIComponent(label)}`;

/**
 * Asks, then revokes. Resolves to the updated key, or null when the operator cancelled.
 * @param {Key} key
 * @returns {Promise<Key | null>}
 */
export async function revokeWithConfirmation(key) {
  const name = key.label ? `${key.id} (${key.label})` : key.id;
  const confirmed = await confirmDialog({
    title: 'Revoke this key?',
    message: `Every data plane will refuse ${name} within milliseconds, with 401 vault_key_revoked. This cannot be undone.`,
    confirm: 'Revoke key',
  });
  if (!confirmed) return null;
  return api('POST', `/vault/keys/${encodeURIComponent(key.id)}/revoke`);
}

/** A spend bar: spent against the binding cap, with the numbers as text beside it. */
export function spendMeter() {
  const meter = /** @type {HTMLMeterElement} */ (h('meter', { min: '0', class: 'spend' }));
  const text = h('span', { class: 'spend-text' });
  return {
    el: h('span', { class: 'spend-cell' }, meter, text),
    /** @param {Key} key */
    update(key) {
      const cap = Math.max(key.cap_micros, 1);
      meter.max = cap;
      meter.optimum = 0;
      meter.low = cap * 0.7;
      meter.high = cap * 0.9;
      meter.value = Math.min(key.spent_micros, cap);
      meter.dataset.spentMicros = String(key.spent_micros);
      const percent = Math.round((key.spent_micros / cap) * 100);
      meter.setAttribute('aria-label', `Spent ${usd(key.spent_micros)} of ${usd(key.cap_micros)} cap (${percent}%)`);
      text.textContent = `${usd(key.spent_micros)} of ${usd(key.cap_micros)}`;
    },
  };
}

/** @param {string} status */
export function statusBadge(status) {
  return h('span', { class: `badge status-${status}` }, status);
}

/**
 * @param {{caption: string, onRevoked?: (key: Key) => void, onError?: (message: string) => void}} options
 */
export function keysTable({ caption, onRevoked, onError }) {
  const tbody = h('tbody');
  /** @type {Map<string, {tr: HTMLElement, update: (key: Key) => void}>} */
  const rows = new Map();
  const empty = h('p', { class: 'empty', hidden: true }, 'No keys match.');
  const heads = ['Label', 'Key', 'Vendor', 'Status', 'Spend against cap', 'At risk', 'Remaining', 'Expires', 'Actions'];
  const table = h(
    'table',
    { class: 'keys' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', null, h('tr', null, heads.map((text) => h('th', { scope: 'col' }, text)))),
    tbody,
  );

  /** @param {Key} initial */
  function row(initial) {
    let key = initial;
    const meter = spendMeter();
    const label = h('td', { class: 'label' });
    const status = h('td');
    const atRisk = h('td', { class: 'num at-risk' });
    const remaining = h('td', { class: 'num remaining' });
    const expires = h('td', { class: 'expires' });
    const revoke = h('button', { type: 'button', class: 'danger small', 'aria-label': `Revoke key ${key.id}` }, 'Revoke');
    revoke.addEventListener('click', async () => {
      try {
        const updated = await revokeWithConfirmation(key);
        if (updated === null) return;
        update(updated);
        onRevoked?.(updated);
      } catch (error) {
        onError?.(`Could not revoke ${key.id}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    const tr = h(
      'tr',
      { 'data-key-id': key.id },
      label,
      h('td', null, h('a', { href: keyHref(key.id), class: 'mono' }, key.id)),
      h('td', null, key.vendor),
      status,
      h('td', { class: 'spend' }, meter.el),
      atRisk,
      remaining,
      expires,
      h('td', null, revoke),
    );
    /** @param {Key} next */
    function update(next) {
      key = next;
      label.replaceChildren(next.label ? h('a', { href: runHref(next.label) }, next.label) : h('span', { class: 'muted' }, '(no label)'));
      status.replaceChildren(statusBadge(next.status));
      meter.update(next);
      atRisk.textContent = usd(next.at_risk_micros);
      remaining.textContent = usd(next.remaining_micros);
      expires.textContent = expiryText(next);
      if (next.expires_at) expires.title = new Date(next.expires_at).toLocaleString();
      revoke.hidden = next.status !== 'active';
    }
    update(initial);
    return { tr, update };
  }

  return {
    el: h('div', { class: 'keys-table' }, scrollable(caption, /** @type {HTMLTableElement} */ (table)), empty),
    get count() {
      return rows.size;
    },
    /** Shows exactly these keys, in this order, reusing rows. @param {Key[]} keys */
    setKeys(keys) {
      const wanted = new Set(keys.map((k) => k.id));
      for (const [id, r] of rows) {
        if (!wanted.has(id)) {
          r.tr.remove();
          rows.delete(id);
        }
      }
      let previous = null;
      for (const key of keys) {
        let r = rows.get(key.id);
        if (r === undefined) {
          r = row(key);
          rows.set(key.id, r);
        } else {
          r.update(key);
        }
        const expected = previous === null ? tbody.firstElementChild : previous.nextElementSibling;
        if (expected !== r.tr) tbody.insertBefore(r.tr, expected);
        previous = r.tr;
      }
      empty.hidden = rows.size > 0;
    },
    /** @param {Key} key */
    updateKey(key) {
      rows.get(key.id)?.update(key);
    },
  };
}
