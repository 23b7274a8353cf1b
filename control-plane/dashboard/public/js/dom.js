// Tiny DOM helpers. Text is always set as text (never parsed as HTML): labels, paths and
// reasons come from pipelines and vendors, so nothing here ever touches innerHTML.

/**
 * Creates an element. Props: `class`, `on<event>` listeners, `value`/`checked`/`disabled`
 * (as properties), anything else as an attribute (`true` → empty attribute; null/false/undefined → absent).
 * @param {string} tag
 * @param {Record<string, unknown> | null} [props]
 * @param {...unknown} children strings, nodes, arrays of them; null/false are skipped
 * @returns {HTMLElement}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    } else if (name === 'class') {
      el.className = String(value);
    } else if (name === 'value' || name === 'checked' || name === 'disabled' || name === 'selected') {
      /** @type {any} */ (el)[name] = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** @param {Node} parent @param {unknown[]} children */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. @param {Element} el @param {...unknown} children */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

let ids = 0;
/** A document-unique id for label/aria wiring. @param {string} prefix */
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/**
 * A labelled form field: label, control, hint and an error slot wired with aria-describedby.
 * @param {{label: string, control: HTMLElement, hint?: string}} options
 */
export function field({ label, control, hint }) {
  const id = control.id || uid('f');
  control.id = id;
  const hintEl = hint === undefined ? null : h('p', { class: 'hint', id: `${id}-hint` }, hint);
  const errorEl = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  control.setAttribute('aria-describedby', [hintEl?.id, errorEl.id].filter(Boolean).join(' '));
  const wrapper = h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl, errorEl);
  return {
    wrapper,
    control,
    /** @param {string | null} message */
    setError(message) {
      errorEl.textContent = message ?? '';
      errorEl.hidden = message === null;
      if (message === null) control.removeAttribute('aria-invalid');
      else control.setAttribute('aria-invalid', 'true');
    },
  };
}

/**
 * A <select> with options [value, text]; `selected` picks one.
 * @param {Record<string, unknown>} props @param {[string, string][]} options @param {string} [selected]
 */
export function select(props, options, selected = '') {
  return h('select', props, options.map(([value, text]) => h('option', { value, selected: value === selected }, text)));
}

/** A table wrapped so it scrolls sideways by keyboard too. @param {string} label @param {HTMLTableElement} table */
export function scrollable(label, table) {
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' }, table);
}
