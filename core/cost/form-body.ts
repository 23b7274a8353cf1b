/**
 * `application/x-www-form-urlencoded` parameters of a money-moving call, read strictly. The proxy
 * forwards bytes, and the vendor parses them with its own parser: anything two parsers could read
 * differently (a repeated key, a raw `;` that some parsers treat as a separator, malformed
 * percent-encoding, a key with stray brackets) is refused rather than priced under one reading.
 * Query parameters count too: a vendor may merge them with the body's.
 */
import { malformed } from './refusal.js';
import type { PricedRequest } from './types.js';
import { quote } from '../quote.js';

export interface FormPair {
  readonly key: string;
  readonly value: string;
}

const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';

/** The media type without parameters, lower-case; '' when absent. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/**
 * Printable ASCII only: encoders percent-encode everything else, and some parsers strip raw
 * spaces after a separator, which would turn ` amount` into `amount` on one side only.
 */
function requireEncodedAscii(text: string, where: string): void {
  // One regex pass over the latin1 text (a byte per character): an indexed or iterator loop in JS costs ~100 ns a byte.
  if (!ENCODED_ASCII.test(text)) throw malformed(`the ${where} has raw bytes that must be percent-encoded`);
}

const ENCODED_ASCII = /^[\x21-\x7e]*$/;

/**
 * Bounds on what one form may hold, far above any vendor call (a Checkout Session with 100 line
 * items and their product data is ~1,500 parameters, Stripe nests at most 5 deep) and low enough
 * that reading the largest form the data plane accepts costs milliseconds, not seconds: the cost
 * of the tree grows with the parameters and their depth, not only with the bytes.
 */
export const MAX_FORM_PARAMETERS = 4000;
export const MAX_FORM_KEY_LENGTH = 500;
export const MAX_FORM_DEPTH = 8;

function decodeComponent(raw: string, where: string): string {
  // Most names and values are plain: nothing to decode (and nothing to get wrong).
  if (!raw.includes('%') && !raw.includes('+')) return raw;
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw malformed(`the ${where} has a malformed percent-encoding or invalid UTF-8`);
  }
}

function parsePairs(text: string, where: string): FormPair[] {
  // Rack (and so, possibly, Stripe) splits on ';' as well as '&': refuse the ambiguity.
  if (text.includes(';')) throw malformed(`the ${where} contains a raw ";"; encode it as %3B`);
  const pairs: FormPair[] = [];
  const parts = text.split('&');
  if (parts.length > MAX_FORM_PARAMETERS) throw malformed(`the ${where} has more than ${MAX_FORM_PARAMETERS} parameters`);
  for (const part of parts) {
    if (part === '') continue;
    const equals = part.indexOf('=');
    const rawKey = equals === -1 ? part : part.slice(0, equals);
    if (rawKey.length > MAX_FORM_KEY_LENGTH) throw malformed(`the ${where} has a parameter name longer than ${MAX_FORM_KEY_LENGTH} characters: ${quote(rawKey)}`);
    const rawValue = equals === -1 ? '' : part.slice(equals + 1);
    pairs.push({ key: decodeComponent(rawKey, where), value: decodeComponent(rawValue, where) });
  }
  return pairs;
}

/** The parameters of the query and of a form body, in that order. */
export function readFormPairs(request: PricedRequest): FormPair[] {
  if (!ENCODED_ASCII.test(request.query)) throw malformed('the query has raw characters that must be percent-encoded');
  const pairs = parsePairs(request.query, 'query');
  const body = request.body;
  if (body === null || body.length === 0) return pairs;
  const type = mediaType(request.contentType);
  // A POST without a Content-Type is read as a form by common server frameworks (Rack does).
  if (type !== '' && type !== FORM_MEDIA_TYPE) {
    throw malformed(`expected an ${FORM_MEDIA_TYPE} body, got ${quote(type)}`);
  }
  const text = body.toString('latin1');
  requireEncodedAscii(text, 'form body');
  const bodyPairs = parsePairs(text, 'form body');
  if (pairs.length + bodyPairs.length > MAX_FORM_PARAMETERS) throw malformed(`the query and form body have more than ${MAX_FORM_PARAMETERS} parameters`);
  return pairs.length === 0 ? bodyPairs : [...pairs, ...bodyPairs];
}

// ---- Stripe: literal bracket nesting -------------------------------------------------------

export type FormNode = string | FormMap;
export type FormMap = Map<string, FormNode>;

/**
 * `a[b][0][]` → ['a', 'b', '0', ''] ('' appends); null for a key with stray brackets (a name
 * before the first bracket, then only `[…]` groups without brackets inside). Refused when nested
 * deeper than MAX_FORM_DEPTH.
 */
export function splitBracketKey(key: string): string[] | null {
  const open = key.indexOf('[');
  if (open === -1) return key === '' || key.includes(']') ? null : [key];
  const head = key.slice(0, open);
  if (head === '' || head.includes(']')) return null;
  const path = [head];
  for (let i = open; i < key.length; ) {
    if (key.charCodeAt(i) !== 0x5b) return null;
    const close = key.indexOf(']', i + 1);
    if (close === -1) return null;
    const segment = key.slice(i + 1, close);
    if (segment.includes('[')) return null;
    if (path.length > MAX_FORM_DEPTH) throw malformed(`parameter ${quote(key)} is nested deeper than ${MAX_FORM_DEPTH} levels`);
    path.push(segment);
    i = close + 1;
  }
  return path;
}

function describeKey(path: readonly string[]): string {
  return path.map((segment, i) => (i === 0 ? segment : `[${segment}]`)).join('');
}

function insert(root: FormMap, path: readonly string[], value: string, key: string): void {
  let node = root;
  for (let i = 0; i < path.length; i += 1) {
    let segment = path[i] ?? '';
    const last = i === path.length - 1;
    if (segment === '') {
      // `x[]=a&x[]=b` appends; `x[][y]=…` groups by a rule parsers disagree on.
      if (!last) throw malformed(`parameter ${quote(key)}: "[]" is only accepted as the last bracket; use indexes`);
      segment = String(node.size);
    }
    const existing = node.get(segment);
    if (last) {
      if (existing !== undefined) {
        throw malformed(`parameter ${quote(describeKey([...path.slice(0, i), segment]))} is given more than once (or as both a value and an object)`);
      }
      node.set(segment, value);
      return;
    }
    if (typeof existing === 'string') {
      throw malformed(`parameter ${quote(describeKey(path.slice(0, i + 1)))} is given both as a value and as an object`);
    }
    if (existing === undefined) {
      const child: FormMap = new Map();
      node.set(segment, child);
      node = child;
    } else {
      node = existing;
    }
  }
}

/** Stripe's v1 parameters as a tree; refuses repeated keys and keys two parsers could split differently. */
export function parseBracketForm(pairs: readonly FormPair[]): FormMap {
  const root: FormMap = new Map();
  for (const { key, value } of pairs) {
    const path = splitBracketKey(key);
    if (path === null) throw malformed(`parameter name ${quote(key)} has unbalanced or stray brackets`);
    insert(root, path, value, key);
  }
  return root;
}

/** The value at `path`, undefined when absent; refused when it is an object. */
export function scalarAt(root: FormMap, path: readonly string[]): string | undefined {
  let node: FormNode = root;
  for (const [i, segment] of path.entries()) {
    if (typeof node === 'string') throw malformed(`parameter ${describeKey(path.slice(0, i))} must be an object`);
    const next: FormNode | undefined = node.get(segment);
    if (next === undefined) return undefined;
    node = next;
  }
  if (typeof node !== 'string') throw malformed(`parameter ${describeKey(path)} must be a single value, not an object`);
  return node;
}

/** The object at `path`, undefined when absent; refused when it is a plain value. */
export function mapAt(root: FormMap, path: readonly string[]): FormMap | undefined {
  let node: FormNode = root;
  for (const [i, segment] of path.entries()) {
    if (typeof node === 'string') throw malformed(`parameter ${describeKey(path.slice(0, i))} must be an object`);
    const next: FormNode | undefined = node.get(segment);
    if (next === undefined) return undefined;
    node = next;
  }
  if (typeof node === 'string') throw malformed(`parameter ${describeKey(path)} must be an object or a list, got ${quote(node)}`);
  return node;
}

/** The items of a list parameter (`line_items[0][…]`, `line_items[1][…]`), in index order. */
export function listAt(root: FormMap, name: string): Array<{ index: string; item: FormMap }> {
  const list = mapAt(root, [name]);
  if (list === undefined) return [];
  const items: Array<{ index: string; item: FormMap }> = [];
  for (const [index, item] of list) {
    if (!/^(?:0|[1-9]\d{0,5})$/.test(index)) throw malformed(`parameter ${name}[${index}]: list items are indexed 0, 1, 2, … without leading zeros`);
    if (typeof item === 'string') throw malformed(`parameter ${name}[${index}] must be an object`);
    items.push({ index, item });
  }
  return items.sort((a, b) => Number(a.index) - Number(b.index));
}

// ---- Twilio: flat, repeatable keys ---------------------------------------------------------

/**
 * The one value of a flat parameter, matched case-insensitively (so `to` and `To` cannot hide one
 * another whichever way the vendor matches names); refused when given more than once.
 */
export function singleParam(pairs: readonly FormPair[], name: string): string | undefined {
  const wanted = name.toLowerCase();
  const matches = pairs.filter((pair) => pair.key.toLowerCase() === wanted);
  if (matches.length > 1) throw malformed(`parameter ${name} is given ${matches.length} times; it must be given once`);
  return matches[0]?.value;
}
