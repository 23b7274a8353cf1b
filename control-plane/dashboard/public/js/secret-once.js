// A secret (a vault key, an operator token) shown once: a panel with the value, a Copy button
// and "Done". The value lives only in that panel's input; it is dropped on Done, when the view
// is left (its AbortSignal) and when the page is hidden (bfcache, tab discard).
import { h } from './dom.js';
import { announce } from './status.js';

/**
 * @param {AbortSignal} signal the view's
 * @returns {{el: HTMLElement, show: (options: SecretOptions) => void, hide: () => void}}
 *
 * @typedef {object} SecretOptions
 * @property {string} id prefix of the element ids, e.g. "vault-key"
 * @property {string} title e.g. "Vault key issued"
 * @property {string} label the input's accessible name, e.g. "Vault key"
 * @property {string} noun for the messages, e.g. "key"
 * @property {string} secret
 * @property {(string | Node)[]} details shown under the value
 * @property {() => void} onDone after the panel is gone (where focus goes next)
 */
export function secretSlot(signal) {
  const el = h('div', { class: 'secret-slot' });
  /** The one place the secret is held: cleared by hide(). */
  let clear = () => {};
  function hide() {
    clear();
    clear = () => {};
  }
  signal.addEventListener('abort', hide, { once: true });
  window.addEventListener('pagehide', hide, { signal });

  /** @param {SecretOptions} options */
  function show({ id, title, label, noun, secret, details, onDone }) {
    hide();
    const input = /** @type {HTMLInputElement} */ (h('input', { type: 'text', readonly: true, id, class: 'mono secret-value', autocomplete: 'off', spellcheck: 'false', value: secret }));
    const copyStatus = h('p', { class: 'copy-status', role: 'status' });
    const copy = h('button', { type: 'button' }, 'Copy');
    const done = h('button', { type: 'button', class: 'secondary' }, `Done: hide the ${noun}`);
    const panel = h(
      'section',
      { class: 'card secret', 'aria-labelledby': `${id}-title` },
      h('h2', { id: `${id}-title`, tabindex: '-1' }, title),
      h('p', null, h('strong', null, 'Copy it now: it is shown only this once.'), ' Keybrake stores only a keyed hash of it.'),
      h('div', { class: 'secret-row' }, h('label', { for: id, class: 'visually-hidden' }, label), input, copy),
      copyStatus,
      h('p', null, ...details),
      h('div', { class: 'actions' }, done),
    );
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(input.value);
        copyStatus.textContent = 'Copied to the clipboard.';
      } catch {
        input.focus();
        input.select();
        copyStatus.textContent = `Copying is not allowed here: the ${noun} is selected, press Ctrl+C (⌘C).`;
      }
    });
    done.addEventListener('click', () => {
      hide();
      onDone();
    });
    clear = () => {
      input.value = '';
      panel.remove();
    };
    el.replaceChildren(panel);
    announce(`${title}. Copy it now: it is shown only once.`);
    /** @type {HTMLElement} */ (panel.querySelector(`#${id}-title`)).focus();
  }

  return { el, show, hide };
}
