// Issue a key: a form mirroring POST /vault/keys. The vault key in the answer is shown once
// (secret-once.js).
import { ApiError, api } from '../api.js';
import { field, h, select } from '../dom.js';
import { usd } from '../format.js';
import { keyHref } from '../keys-table.js';
import { secretSlot } from '../secret-once.js';
import { messageBox } from '../status.js';

const ENDPOINT_EXAMPLES = {
  stripe: 'POST /v1/payment_intents\nPOST /v1/payment_intents/*/capture',
  twilio: 'POST /2010-04-01/Accounts/*/Messages.json',
  resend: 'POST /emails',
};

/** Error fields the API may name → the form field that sets them. */
const FIELD_ALIASES = {
  agent_run_label: 'label',
  daily_cap_micros: 'daily_usd_cap',
  budget_micros: 'budget_usd',
  expires_in_seconds: 'expires_in',
  per_call_estimate_micros: 'per_call_estimate_usd',
};

/** @param {{main: HTMLElement, signal: AbortSignal}} ctx */
export function issueView({ main, signal }) {
  document.title = 'Issue a key — Keybrake';
  const text = (/** @type {string} */ name, /** @type {Record<string, unknown>} */ extra = {}) =>
    h('input', { type: 'text', name, autocomplete: 'off', spellcheck: 'false', ...extra });
  const fields = {
    vendor: field({ label: 'Vendor', control: select({ name: 'vendor' }, [['stripe', 'Stripe'], ['twilio', 'Twilio'], ['resend', 'Resend']], 'stripe') }),
    label: field({ label: 'Label', control: text('label', { maxlength: '200' }), hint: 'The run or branch this key is for, e.g. metaflow/1234 (at most 200 characters).' }),
    allowed_endpoints: field({
      label: 'Allowed endpoints',
      control: h('textarea', { name: 'allowed_endpoints', rows: '4', spellcheck: 'false', placeholder: ENDPOINT_EXAMPLES.stripe }),
      hint: 'One "METHOD /path" per line, in the vendor\'s own path space; * matches exactly one segment.',
    }),
    daily_usd_cap: field({ label: 'Daily cap (USD)', control: text('daily_usd_cap', { inputmode: 'decimal', placeholder: '100.00' }), hint: 'Resets at UTC midnight.' }),
    budget_usd: field({ label: 'Lifetime budget (USD)', control: text('budget_usd', { inputmode: 'decimal' }), hint: 'Set a daily cap, a budget, or both.' }),
    expires_in: field({ label: 'Expires in', control: text('expires_in', { placeholder: '24h' }), hint: 'e.g. 30m, 4h, 7d; 24h when empty; at most 90 days.' }),
    per_call_estimate_usd: field({
      label: 'Per-call estimate (USD, optional)',
      control: text('per_call_estimate_usd', { inputmode: 'decimal' }),
      hint: 'Reserved for money-moving calls whose amount the request does not show.',
    }),
  };
  fields.allowed_endpoints.wrapper.classList.add('wide');
  const vendorSelect = /** @type {HTMLSelectElement} */ (fields.vendor.control);
  const endpoints = /** @type {HTMLTextAreaElement} */ (fields.allowed_endpoints.control);
  vendorSelect.addEventListener('change', () => {
    endpoints.placeholder = ENDPOINT_EXAMPLES[/** @type {keyof typeof ENDPOINT_EXAMPLES} */ (vendorSelect.value)] ?? '';
  });

  const formMessage = messageBox('error');
  const submit = h('button', { type: 'submit' }, 'Issue key');
  const form = /** @type {HTMLFormElement} */ (
    h('form', { class: 'card issue', novalidate: true, 'aria-labelledby': 'issue-title' }, formMessage.el, Object.values(fields).map((f) => f.wrapper), h('div', { class: 'actions' }, submit))
  );
  const secret = secretSlot(signal);
  main.replaceChildren(h('h1', { id: 'issue-title', tabindex: '-1' }, 'Issue a key'), secret.el, form);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    secret.hide();
    for (const f of Object.values(fields)) f.setError(null);
    formMessage.show(null);
    const body = requestBody();
    submit.disabled = true;
    submit.setAttribute('aria-busy', 'true');
    try {
      const answer = await api('POST', '/vault/keys', { body, signal });
      const { vault_key: vaultKey, ...key } = answer;
      showSecret(String(vaultKey), key);
      form.reset();
    } catch (error) {
      if (signal.aborted) return;
      showError(error);
    } finally {
      submit.disabled = false;
      submit.removeAttribute('aria-busy');
    }
  });

  function requestBody() {
    const data = new FormData(form);
    const value = (/** @type {string} */ name) => String(data.get(name) ?? '').trim();
    /** @type {Record<string, unknown>} */
    const body = {
      vendor: value('vendor'),
      allowed_endpoints: value('allowed_endpoints').split('\n').map((line) => line.trim()).filter((line) => line !== ''),
    };
    // Dollars go as the decimal strings typed: the API parses them exactly.
    for (const name of ['label', 'daily_usd_cap', 'budget_usd', 'expires_in', 'per_call_estimate_usd']) if (value(name) !== '') body[name] = value(name);
    return body;
  }

  /** @param {unknown} error */
  function showError(error) {
    if (!(error instanceof ApiError)) {
      formMessage.show(`Could not issue the key: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    formMessage.show(`Not issued: ${error.message}`);
    const named = /^([a-z_]+)(?:\[\d+\])?:/.exec(error.message)?.[1];
    const name = named === undefined ? undefined : (/** @type {Record<string, string>} */ (FIELD_ALIASES)[named] ?? named);
    const target = name === undefined ? undefined : /** @type {Record<string, ReturnType<typeof field>>} */ (fields)[name];
    if (target !== undefined) {
      target.setError(error.message.slice(error.message.indexOf(':') + 1).trim());
      target.control.focus();
    } else {
      formMessage.el.setAttribute('tabindex', '-1');
      formMessage.el.focus();
    }
  }

  /**
   * @param {string} vaultKey
   * @param {import('../keys-table.js').Key} key
   */
  function showSecret(vaultKey, key) {
    secret.show({
      id: 'vault-key',
      title: 'Vault key issued',
      label: 'Vault key',
      noun: 'key',
      secret: vaultKey,
      details: [
        'Key ',
        h('a', { href: keyHref(key.id), class: 'mono' }, key.id),
        `: ${key.vendor}${key.label ? `, label ${key.label}` : ''}, cap ${usd(key.cap_micros)}, expires ${key.expires_at ? new Date(key.expires_at).toLocaleString() : '—'}.`,
      ],
      onDone: () => /** @type {HTMLElement | null} */ (form.querySelector('select, input'))?.focus(),
    });
  }
}
