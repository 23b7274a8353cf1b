// Sign in: the operator pastes a token; it is checked against the API before it is kept.
import { ApiError, api, setToken } from '../api.js';
import { field, h } from '../dom.js';
import { messageBox } from '../status.js';

/**
 * @param {{main: HTMLElement, notice: string | null, onSignedIn: () => void}} ctx
 */
export function signinView({ main, notice, onSignedIn }) {
  document.title = 'Sign in — Keybrake';
  const token = field({
    label: 'Operator token',
    control: h('input', { type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true }),
    hint: 'An admin, issuer or auditor token (kbo_…, or the bootstrap KEYBRAKE_ADMIN_TOKEN). It is kept in this tab only.',
  });
  const message = messageBox('error');
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card signin', novalidate: true }, token.wrapper, message.el, submit);
  main.replaceChildren(h('h1', { tabindex: '-1' }, 'Sign in'), form);
  if (notice) message.show(notice);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = /** @type {HTMLInputElement} */ (token.control);
    const value = input.value.trim();
    token.setError(null);
    message.show(null);
    if (value === '') {
      token.setError('Paste an operator token.');
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.setAttribute('aria-busy', 'true');
    try {
      await api('GET', '/vault/keys?limit=1', { token: value });
      setToken(value);
      input.value = '';
      onSignedIn();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        token.setError('This token was not accepted: check that you pasted the whole operator token for this control plane.');
        message.show(`Sign-in failed: wrong or unknown operator token (${error.message}).`);
      } else if (error instanceof ApiError && error.status === 403) {
        message.show(`This token may not read keys (${error.message}).`);
      } else {
        message.show(`Sign-in failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      input.focus();
      input.select();
    } finally {
      submit.disabled = false;
      submit.removeAttribute('aria-busy');
    }
  });
  /** @type {HTMLInputElement} */ (token.control).focus();
}
