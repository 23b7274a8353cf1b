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
function requireEncodedAscii(bytes: Uint8Array, where: string): void {
  for (const byte of bytes) {
    if (byte < 0x21 || byte > 0x7e) throw malformed(`the ${where} has raw bytes that must be percent-encoded`);
  }
}

const ENCODED_ASCII = /^[\x21-\x7e]*$/;

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
  for (const part of text.split('&')) {
    if (part === '') continue;
    const equals = part.indexOf('=');
    const rawKey = equals === -1 ? part : part.slice(0, equals);
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
  requireEncodedAscii(body, 'form body');
  return [...pairs, ...parsePairs(body.toString('latin1'), 'form body')];
}

// ---- Stripe: literal bracket nesting -------------------------------------------------------

export type FormNode = string | FormMap;
export type FormMap = Map<string, FormNode>;

const BRACKETED_KEY = /^([^[\]]+)((?:\[[^[\]]*\])*)$/;

/** `a[b][0][]` → ['a', 'b', '0', ''] ('' appends); null for a key with stray brackets. */
export function splitBracketKey(key: string): string[] | null {
  if (key !== '' && !key.includes('[') && !key.includes(']')) return [key];
  const match = BRACKETED_KEY.exec(key);
  if (match === null) return null;
  const [, head = '', brackets = ''] = match;
  return [head, ...[...brackets.matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1] ?? '')];
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
