// Operator tokens (admin only): the list (never the secrets), a form that creates one and shows
// its secret once, and revocation after confirmation. Mirrors GET/POST /tokens, DELETE /tokens/{id}.
import { ApiError, api } from '../api.js';
import { confirmDialog } from '../dialog.js';
import { field, h, scrollable, select } from '../dom.js';
import { dateTimeText } from '../format.js';
import { secretSlot } from '../secret-once.js';
import { announce, messageBox } from '../status.js';

/** @typedef {{id: string, name: string, role: string, created_at: string | null}} OperatorToken */

/** @param {{main: HTMLElement, signal: AbortSignal}} ctx */
export function tokensView({ main, signal }) {
  document.title = 'Operator tokens — Keybrake';
  const message = messageBox('error');
  const role = field({ label: 'Role', control: select({ name: 'role' }, [['issuer', 'Issuer: issue, read and revoke keys'], ['auditor', 'Auditor: read keys and the audit trail'], ['admin', 'Admin: everything']], 'issuer') });
  const name = field({ label: 'Name', control: h('input', { type: 'text', name: 'name', autocomplete: 'off', maxlength: '200' }), hint: 'What the token is for, e.g. "metaflow start steps".' });
  const formMessage = messageBox('error');
  const submit = h('button', { type: 'submit' }, 'Create token');
  const form = /** @type {HTMLFormElement} */ (
    h('form', { class: 'card issue', novalidate: true, 'aria-labelledby': 'create-token-title' }, formMessage.el, role.wrapper, name.wrapper, h('div', { class: 'actions' }, submit))
  );
  const secret = secretSlot(signal);
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'No tokens yet: only the bootstrap token (KEYBRAKE_ADMIN_TOKEN), which is configuration and not listed.');
  const heads = ['ID', 'Role', 'Name', 'Created', ''];
  const table = h('table', { class: 'tokens' }, h('caption', { class: 'visually-hidden' }, 'Operator tokens, oldest first'), h('thead', null, h('tr', null, heads.map((t) => h('th', { scope: 'col' }, t)))), tbody);
  main.replaceChildren(
    h('h1', { tabindex: '-1' }, 'Operator tokens'),
    message.el,
    secret.el,
    h('h2', { id: 'create-token-title' }, 'Create a token'),
    form,
    h('h2', null, 'Tokens'),
    scrollable('Operator tokens', table),
    empty,
  );

  async function load() {
    try {
      const body = await api('GET', '/tokens', { signal });
      /** @type {OperatorToken[]} */
      const tokens = body.tokens;
      tbody.replaceChildren(...tokens.map(row));
      empty.hidden = tokens.length > 0;
      message.show(null);
    } catch (error) {
      if (signal.aborted) return;
      form.hidden = error instanceof ApiError && error.status === 403;
      message.show(error instanceof ApiError && error.status === 403 ? 'Only an admin token can see and manage operator tokens.' : `Could not read the tokens: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** @param {OperatorToken} token */
  function row(token) {
    const revoke = h('button', { type: 'button', class: 'danger small', 'aria-label': `Revoke token ${token.id}` }, 'Revoke');
    const tr = h('tr', { 'data-token-id': token.id }, h('td', { class: 'mono' }, token.id), h('td', null, token.role), h('td', null, token.name || '—'), h('td', null, token.created_at ? dateTimeText(token.created_at) : '—'), h('td', null, revoke));
    revoke.addEventListener('click', async () => {
      const confirmed = await confirmDialog({
        title: 'Revoke this token?',
        message: `${token.id} (${token.role}${token.name ? `, ${token.name}` : ''}) is refused from its next call on. This cannot be undone.`,
        confirm: 'Revoke token',
      });
      if (!confirmed) return;
      try {
        await api('DELETE', `/tokens/${encodeURIComponent(token.id)}`, { signal });
        tr.remove();
        empty.hidden = tbody.children.length > 0;
        message.show(`Revoked ${token.id}.`, 'success');
        announce(`Revoked ${token.id}`);
      } catch (error) {
        if (signal.aborted) return;
        message.show(`Not revoked: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    return tr;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    secret.hide();
    formMessage.show(null);
    name.setError(null);
    const data = new FormData(form);
    const body = { role: String(data.get('role') ?? ''), name: String(data.get('name') ?? '').trim() };
    submit.disabled = true;
    try {
      const created = await api('POST', '/tokens', { body, signal });
      secret.show({
        id: 'token-secret',
        title: 'Token created',
        label: 'Token',
        noun: 'token',
        secret: String(created.token),
        details: [h('span', { class: 'mono' }, created.id), `: ${created.role}${created.name ? `, ${created.name}` : ''}.`],
        onDone: () => /** @type {HTMLElement | null} */ (form.querySelector('select'))?.focus(),
      });
      form.reset();
      await load();
    } catch (error) {
      if (signal.aborted) return;
      formMessage.show(`Not created: ${error instanceof Error ? error.message : String(error)}`);
      if (error instanceof ApiError && /^name:/.test(error.message)) name.setError(error.message.slice(5).trim());
    } finally {
      submit.disabled = false;
    }
  });

  void load();
}
