// One polite live region for short announcements, and page-level messages.
import { h } from './dom.js';

/** Says something to screen readers without moving focus. @param {string} text */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (region === null) return;
  region.textContent = '';
  // A fresh text node after a tick so the same message twice is read twice.
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/**
 * A message box (role=alert for errors, role=status otherwise). Empty text hides it.
 * @param {'error' | 'info' | 'success'} kind
 */
export function messageBox(kind = 'error') {
  const el = h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status', hidden: true });
  return {
    el,
    /** @param {string | null} text @param {'error' | 'info' | 'success'} [as] */
    show(text, as = kind) {
      el.className = `message ${as}`;
      el.setAttribute('role', as === 'error' ? 'alert' : 'status');
      el.textContent = text ?? '';
      el.hidden = !text;
    },
  };
}
