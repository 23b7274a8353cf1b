/**
 * How ListKeys finds keys without reading them all: which part of etcd a query walks, where in
 * it a page starts, and the page cursor that names that place. Pure: EtcdStore does the I/O.
 *
 * Two orders come for free from etcd's ascending key order, with no sort (a range sorted any
 * other way makes etcd read the whole range before it applies the limit):
 * - `keys/<id>`: key ids begin with their inverted creation time (key-record.ts newKeyId), so
 *   the whole keyspace walks newest first;
 * - `key-labels/<label>\0<id>` → '' (one entry per labelled key, written and deleted in the
 *   same transaction as the key): one label's keys walk newest first, and a label prefix walks
 *   by label (Unicode code point order; "a" before "a/b" before "ab"), then newest first. Labels
 *   never contain control characters (key-spec.ts), so the NUL ends the label unambiguously.
 * An unlabelled key has no index entry: nothing lists by the empty label (it means "any").
 */
import { invalidField } from '../core/operator-error.js';
import { CONTROL_CHARACTER, LONE_SURROGATE } from '../core/text.js';
import { KEY_ID_PATTERN } from './key-record.js';
import { MAX_LABEL_LENGTH } from './key-spec.js';
import { decodeCursorJson } from './request-bounds.js';

export const KEY_PREFIX = 'keys/';
export const LABEL_INDEX_PREFIX = 'key-labels/';
/** Set once every key written before the label index existed has its entry (EtcdStore.buildLabelIndex). */
export const LABEL_INDEX_MARKER = 'meta/label-index-v1';


/**
 * A place in a listing: the last key a page examined. `label` is that key's label when the
 * listing walks the label index, null when it walks `keys/`.
 */
export interface KeyPosition {
  readonly label: string | null;
  readonly id: string;
}

/** What a listing walks: one label's entries, a label prefix's entries, every key, or nothing. */
export type ListingScope =
  | { readonly kind: 'label'; readonly label: string }
  | { readonly kind: 'prefix'; readonly prefix: string }
  | { readonly kind: 'all' }
  | { readonly kind: 'none' };

export function listingScope(label: string, labelPrefix: string): ListingScope {
  if (label !== '') return label.startsWith(labelPrefix) ? { kind: 'label', label } : { kind: 'none' };
  if (labelPrefix !== '') return { kind: 'prefix', prefix: labelPrefix };
  return { kind: 'all' };
}

/** The etcd prefix (under the namespace) a scope walks. */
export function scopePrefix(scope: Exclude<ListingScope, { kind: 'none' }>): string {
  switch (scope.kind) {
    case 'label':
      return `${LABEL_INDEX_PREFIX}${scope.label}\u0000`;
    case 'prefix':
      return `${LABEL_INDEX_PREFIX}${scope.prefix}`;
    case 'all':
      return KEY_PREFIX;
  }
}

/** A key's label index entry, or null for an unlabelled key (which has none). */
export function labelIndexKey(label: string, id: string): string | null {
  return label === '' ? null : `${LABEL_INDEX_PREFIX}${label}\u0000${id}`;
}

/** The position a `keys/` key or a label index entry names (null for any other key). */
export function positionOf(etcdKey: string): KeyPosition | null {
  if (etcdKey.startsWith(KEY_PREFIX)) return { label: null, id: etcdKey.slice(KEY_PREFIX.length) };
  if (!etcdKey.startsWith(LABEL_INDEX_PREFIX)) return null;
  const nul = etcdKey.indexOf('\u0000', LABEL_INDEX_PREFIX.length);
  return nul < 0 ? null : { label: etcdKey.slice(LABEL_INDEX_PREFIX.length, nul), id: etcdKey.slice(nul + 1) };
}

/** The etcd key of a position: a page that ended there resumes after it. */
export function positionKey(position: KeyPosition): string {
  return position.label === null ? `${KEY_PREFIX}${position.id}` : `${LABEL_INDEX_PREFIX}${position.label}\u0000${position.id}`;
}

/** True when the position lies in what the scope walks (a cursor from another listing does not). */
export function inScope(position: KeyPosition, scope: ListingScope): boolean {
  switch (scope.kind) {
    case 'label':
      return position.label === scope.label;
    case 'prefix':
      return position.label !== null && position.label.startsWith(scope.prefix);
    case 'all':
      return position.label === null;
    case 'none':
      return true;
  }
}

/** A page cursor: base64url of `[id]` (a walk of every key) or `[label, id]` (of the label index). */
export function encodePageToken(position: KeyPosition): string {
  return Buffer.from(JSON.stringify(position.label === null ? [position.id] : [position.label, position.id]), 'utf8').toString('base64url');
}

/**
 * The position a cursor names, checked to be one this API hands out for these filters: a key
 * id, a label a key can have, and inside the listing's scope. Anything else (another shape, an
 * older cursor, a cursor of another label) is `invalid_argument` on `field`.
 */
export function decodePageToken(token: string, scope: ListingScope, field: string): KeyPosition {
  const value = decodeCursorJson(token);
  let position: KeyPosition | null = null;
  if (Array.isArray(value) && value.length === 1 && isKeyId(value[0])) position = { label: null, id: value[0] };
  if (Array.isArray(value) && value.length === 2 && isLabel(value[0]) && isKeyId(value[1])) position = { label: value[0], id: value[1] };
  if (position === null) throw invalidField(field, 'is not a token this API returned');
  if (!inScope(position, scope)) throw invalidField(field, 'belongs to a listing with other label filters: start again without it');
  return position;
}

function isKeyId(value: unknown): value is string {
  return typeof value === 'string' && KEY_ID_PATTERN.test(value);
}

function isLabel(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && value.length <= MAX_LABEL_LENGTH && !CONTROL_CHARACTER.test(value) && !LONE_SURROGATE.test(value);
}
