// A modal confirmation on the native <dialog>: focus moves in and back, Escape cancels.
import { h } from './dom.js';

/**
 * @param {{title: string, message: string, confirm: string, cancel?: string}} options
 * @returns {Promise<boolean>} true only when the confirm button was pressed
 */
export function confirmDialog({ title, message, confirm, cancel = 'Cancel' }) {
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const titleId = `dialog-title-${Date.now()}`;
    const messageId = `${titleId}-message`;
    const cancelButton = h('button', { type: 'button', class: 'secondary', value: 'cancel' }, cancel);
    const confirmButton = h('button', { type: 'button', class: 'danger', value: 'confirm' }, confirm);
    const dialog = /** @type {HTMLDialogElement} */ (
      h(
        'dialog',
        { class: 'confirm', 'aria-labelledby': titleId, 'aria-describedby': messageId },
        h('h2', { id: titleId }, title),
        h('p', { id: messageId }, message),
        h('div', { class: 'actions' }, cancelButton, confirmButton),
      )
    );
    cancelButton.addEventListener('click', () => dialog.close('cancel'));
    confirmButton.addEventListener('click', () => dialog.close('confirm'));
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(dialog.returnValue === 'confirm');
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    cancelButton.focus();
  });
}
