import { describe, expect, it } from 'vitest';

import { OperatorError } from '../../core/operator-error.js';
import { newKeyId } from '../../control-plane/key-record.js';
import {
  decodePageToken,
  encodePageToken,
  inScope,
  labelIndexKey,
  listingScope,
  positionKey,
  positionOf,
  scopePrefix,
  type KeyPosition,
} from '../../control-plane/key-listing.js';
import { FILTER_MAX_LENGTH } from '../../control-plane/request-bounds.js';

/** etcd's order: ascending bytes of the UTF-8 key. */
const etcdOrder = (keys: string[]) => [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof OperatorError) return `${error.code}: ${error.rawMessage}`;
    throw error;
  }
  throw new Error('not refused');
}

describe('listing scope', () => {
  it('walks one label, a label prefix, or every key', () => {
    expect(listingScope('run/1', '')).toEqual({ kind: 'label', label: 'run/1' });
    expect(listingScope('run/1', 'run/')).toEqual({ kind: 'label', label: 'run/1' });
    expect(listingScope('run/1', 'other/')).toEqual({ kind: 'none' });
    expect(listingScope('', 'run/')).toEqual({ kind: 'prefix', prefix: 'run/' });
    expect(listingScope('', '')).toEqual({ kind: 'all' });
    expect(scopePrefix({ kind: 'label', label: 'run/1' })).toBe('key-labels/run/1\u0000');
    expect(scopePrefix({ kind: 'prefix', prefix: 'run/' })).toBe('key-labels/run/');
    expect(scopePrefix({ kind: 'all' })).toBe('keys/');
  });

  it('gives an unlabelled key no index entry', () => {
    expect(labelIndexKey('', 'vk_00000000000000000000')).toBeNull();
    expect(labelIndexKey('a', 'vk_00000000000000000000')).toBe('key-labels/a\u0000vk_00000000000000000000');
  });

  it("orders a label's entries newest first, and a prefix by label then newest first, in etcd's key order", () => {
    const t0 = Date.parse('2026-12-01T00:00:00Z');
    const keys = [
      { label: 'run/1', id: newKeyId(t0) },
      { label: 'run/1', id: newKeyId(t0 + 1) },
      { label: 'run/1', id: newKeyId(t0 + 86_400_000) },
      { label: 'run/10', id: newKeyId(t0 + 5) },
      { label: 'run/1/a', id: newKeyId(t0 + 2) },
      { label: 'run/2', id: newKeyId(t0 - 1) },
      { label: 'rum', id: newKeyId(t0 + 9) },
    ];
    const entries = etcdOrder(keys.map((k) => labelIndexKey(k.label, k.id)!));
    const walked = (prefix: string) => entries.filter((e) => e.startsWith(prefix)).map((e) => positionOf(e)!);
    expect(walked(scopePrefix({ kind: 'label', label: 'run/1' })).map((p) => p.id)).toEqual([keys[2]!.id, keys[1]!.id, keys[0]!.id]);
    expect(walked(scopePrefix({ kind: 'prefix', prefix: 'run/' }))).toEqual([
      { label: 'run/1', id: keys[2]!.id },
      { label: 'run/1', id: keys[1]!.id },
      { label: 'run/1', id: keys[0]!.id },
      { label: 'run/1/a', id: keys[4]!.id },
      { label: 'run/10', id: keys[3]!.id },
      { label: 'run/2', id: keys[5]!.id },
    ]);
    // Every key: ids alone, newest first.
    const t = new Map(keys.map((k, i) => [k.id, [t0, t0 + 1, t0 + 86_400_000, t0 + 5, t0 + 2, t0 - 1, t0 + 9][i]!]));
    const byTime = [...keys].sort((a, b) => t.get(b.id)! - t.get(a.id)!);
    expect(etcdOrder(keys.map((k) => `keys/${k.id}`)).map((k) => positionOf(k)!.id)).toEqual(byTime.map((k) => k.id));
  });

  it('names a position by the etcd key a page resumes after', () => {
    const id = newKeyId(Date.now());
    for (const position of [{ label: null, id }, { label: 'run/ü', id }] satisfies KeyPosition[]) expect(positionOf(positionKey(position))).toEqual(position);
    expect(positionOf('key-hashes/abc')).toBeNull();
  });
});

describe('page cursors', () => {
  const id = newKeyId(Date.parse('2026-12-01T00:00:00Z'));
  const all = listingScope('', '');
  const label = listingScope('run/1', '');
  const prefix = listingScope('', 'run/');

  it('round-trip, opaque base64url', () => {
    for (const [position, scope] of [
      [{ label: null, id }, all],
      [{ label: 'run/1', id }, label],
      [{ label: 'run/1/β "quoted" \\', id }, prefix],
    ] as const) {
      const token = encodePageToken(position);
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodePageToken(token, scope, 'cursor')).toEqual(position);
    }
  });

  it('fit the cursor bound with the longest label', () => {
    const longest = '"'.repeat(100) + '\u{1F600}'.repeat(50);
    expect(longest.length).toBe(200);
    const token = encodePageToken({ label: longest, id });
    expect(token.length).toBeLessThanOrEqual(FILTER_MAX_LENGTH.cursor);
    expect(decodePageToken(token, listingScope(longest, ''), 'cursor').label).toBe(longest);
    expect(encodePageToken({ label: '\u4e00'.repeat(200), id }).length).toBeLessThanOrEqual(FILTER_MAX_LENGTH.cursor);
  });

  it('refuse what this API did not hand out', () => {
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    // The cursor of earlier versions: [createdAtMs, id].
    expect(refusal(() => decodePageToken(b64([1_700_000_000_000, id]), all, 'page_token'))).toBe('invalid_argument: page_token: is not a token this API returned');
    expect(refusal(() => decodePageToken('not base64!', all, 'cursor'))).toMatch(/^invalid_argument: cursor: is not a token/);
    expect(refusal(() => decodePageToken('A'.repeat(FILTER_MAX_LENGTH.cursor + 4), all, 'cursor'))).toMatch(/is not a token/);
    expect(refusal(() => decodePageToken(b64(['run/1', 5]), all, 'cursor'))).toMatch(/is not a token/);
    expect(refusal(() => decodePageToken(b64(['vk_short']), all, 'cursor'))).toMatch(/is not a token/);
    expect(refusal(() => decodePageToken(b64(['a\u0001b', id]), prefix, 'cursor'))).toMatch(/is not a token/);
    expect(refusal(() => decodePageToken(b64(['', id]), prefix, 'cursor'))).toMatch(/is not a token/);
    expect(refusal(() => decodePageToken(b64(['x'.repeat(201), id]), prefix, 'cursor'))).toMatch(/is not a token/);
    expect(refusal(() => decodePageToken(b64(['a\ud800', id]), prefix, 'cursor'))).toMatch(/is not a token/);
    expect(refusal(() => decodePageToken(b64({ label: 'run/1', id }), label, 'cursor'))).toMatch(/is not a token/);
  });

  it("refuse another listing's cursor", () => {
    const ofRun2 = encodePageToken({ label: 'run/2', id });
    expect(refusal(() => decodePageToken(ofRun2, label, 'cursor'))).toMatch(/^invalid_argument: cursor: belongs to a listing with other label filters/);
    expect(decodePageToken(ofRun2, prefix, 'cursor')).toEqual({ label: 'run/2', id });
    expect(refusal(() => decodePageToken(ofRun2, listingScope('', 'other/'), 'cursor'))).toMatch(/belongs to a listing/);
    expect(refusal(() => decodePageToken(ofRun2, all, 'cursor'))).toMatch(/belongs to a listing/);
    expect(refusal(() => decodePageToken(encodePageToken({ label: null, id }), prefix, 'cursor'))).toMatch(/belongs to a listing/);
    expect(inScope({ label: 'run/2', id }, listingScope('run/2', 'other'))).toBe(true);
  });
});
