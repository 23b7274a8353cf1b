/**
 * Stripe v1 parameters: `application/x-www-form-urlencoded` with literal bracket nesting, as
 * stripe-node, stripe-python and curl users send them:
 *   metadata[k]=v  payment_method_types[0]=card  line_items[0][price_data][unit_amount]=500  expand[]=x
 * parsed to nested objects, with objects whose keys are all indexes turned into arrays.
 */

export type FormValue = string | FormValue[] | FormObject;
export interface FormObject {
  [key: string]: FormValue;
}

/** Keys that would reach Object.prototype through plain objects. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** `a[b][0][]` → ['a', 'b', '0', ''] ('' means "append"); a malformed key is one literal segment. */
export function splitFormKey(key: string): string[] {
  const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
  if (!match) return [key];
  const [, head = key, brackets = ''] = match;
  const rest = [...brackets.matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1] ?? '');
  return [head, ...rest];
}

function isFormObject(value: FormValue | undefined): value is FormObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function assign(target: FormObject, segments: readonly string[], value: string): void {
  let node = target;
  for (let i = 0; i < segments.length; i += 1) {
    let segment = segments[i] ?? '';
    if (FORBIDDEN_KEYS.has(segment)) return;
    // `x[]=a&x[]=b`: append at the next free index, so it ends up an array like `x[0]`/`x[1]`.
    if (segment === '' && i > 0) segment = String(Object.keys(node).length);
    if (i === segments.length - 1) {
      node[segment] = value;
      return;
    }
    const next = node[segment];
    if (isFormObject(next)) {
      node = next;
    } else {
      const child: FormObject = {};
      node[segment] = child;
      node = child;
    }
  }
}

/** Objects keyed 0..n-1 become arrays, recursively (a sparse `a[0]&a[2]` stays compacted in order). */
function arraysFromIndexes(value: FormValue): FormValue {
  if (!isFormObject(value)) return value;
  const keys = Object.keys(value);
  for (const key of keys) value[key] = arraysFromIndexes(value[key] ?? '');
  if (keys.length === 0 || !keys.every((key) => /^\d+$/.test(key))) return value;
  return keys
    .map(Number)
    .sort((a, b) => a - b)
    .map((index) => value[String(index)] ?? '');
}

export function parseStripeForm(text: string): FormObject {
  const root: FormObject = {};
  for (const [key, value] of new URLSearchParams(text)) assign(root, splitFormKey(key), value);
  for (const key of Object.keys(root)) root[key] = arraysFromIndexes(root[key] ?? '');
  return root;
}
