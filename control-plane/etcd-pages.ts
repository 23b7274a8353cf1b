/**
 * Reading a prefix of etcd a page at a time. Nothing in Keybrake reads a whole keyspace in one
 * range request: with a million keys one answer would be hundreds of MB (above gRPC's message
 * limit, and above etcd's own request limits), would stall etcd, and would sit in memory whole.
 * A walk reads `pageSize` keys per request, every page at the revision of the first, so it sees
 * one consistent state however long it takes; if that revision is compacted away meanwhile the
 * walk starts again (compaction keeps a window far longer than a walk takes).
 */
import type { IKeyValue, Namespace } from 'etcd3';

import { guard } from './etcd-guard.js';

/** Keys per range request unless the caller says otherwise (KEYBRAKE_ETCD_PAGE_SIZE). */
export const DEFAULT_ETCD_PAGE_SIZE = 1000;

export interface EtcdPage {
  readonly kvs: readonly IKeyValue[];
  /** The revision every page of this walk is read at. */
  readonly revision: number;
  /** True when keys remain after this page (etcd's `more`): the walk will read another page. */
  readonly more: boolean;
}

export interface WalkOptions {
  readonly pageSize: number;
  /** Start after this key (exclusive), e.g. a cursor; the prefix's first key otherwise. */
  readonly after?: string;
  /** Read at this revision rather than the current one. */
  readonly revision?: number;
}

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  // All 0xff (or empty): to the end of the keyspace.
  return Buffer.from([0]);
}

/** The smallest key after `key`. */
function successor(key: Buffer): Buffer {
  return Buffer.concat([key, Buffer.from([0])]);
}

/**
 * The keys under `prefix` in key order, a page at a time, all read at one revision (the first
 * page's, or `options.revision`). Each page is one range request of at most `pageSize` keys.
 */
export async function* walkPrefix(ns: Namespace, prefix: string, options: WalkOptions): AsyncGenerator<EtcdPage> {
  const end = prefixEnd(prefix);
  let start = options.after === undefined ? Buffer.from(prefix, 'utf8') : successor(Buffer.from(options.after, 'utf8'));
  let revision = options.revision;
  for (;;) {
    let builder = ns.getAll().inRange({ start, end }).limit(options.pageSize);
    if (revision !== undefined) builder = builder.revision(String(revision));
    const response = await guard(builder.exec());
    revision ??= Number(response.header.revision);
    const last = response.kvs.at(-1);
    yield { kvs: response.kvs, revision, more: response.more && last !== undefined };
    if (!response.more || last === undefined) return;
    start = successor(last.key);
  }
}

/**
 * Every key under a prefix that stays small (credentials, operator tokens), read in pages; the
 * walk starts again if its revision is compacted away mid-way.
 */
export async function collectPrefix(ns: Namespace, prefix: string, pageSize: number): Promise<{ kvs: IKeyValue[]; revision: number }> {
  for (let attempt = 0; ; attempt++) {
    try {
      const kvs: IKeyValue[] = [];
      let revision = 0;
      for await (const page of walkPrefix(ns, prefix, { pageSize })) {
        kvs.push(...page.kvs);
        revision = page.revision;
      }
      return { kvs, revision };
    } catch (error) {
      if (attempt >= 2 || !isCompacted(error)) throw error;
    }
  }
}

/**
 * Visits every key under a prefix a page at a time, for walks that change what they walk and
 * need no single snapshot (retention, building an index): the visitor runs before the next page
 * is read, and if the walk's revision is compacted away meanwhile it goes on after the last key
 * visited, at the current revision. Visitors must be idempotent.
 */
export async function visitPrefix(ns: Namespace, prefix: string, pageSize: number, visit: (kvs: readonly IKeyValue[]) => Promise<void> | void): Promise<void> {
  let after: string | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const page of walkPrefix(ns, prefix, after === undefined ? { pageSize } : { pageSize, after })) {
        if (page.kvs.length === 0) continue;
        await visit(page.kvs);
        after = page.kvs.at(-1)!.key.toString('utf8');
      }
      return;
    } catch (error) {
      if (attempt >= 8 || !isCompacted(error)) throw error;
    }
  }
}

/** etcd's answer for a read at a revision compaction has removed. */
export function isCompacted(error: unknown): boolean {
  return /required revision has been compacted/i.test(error instanceof Error ? error.message : String(error));
}
