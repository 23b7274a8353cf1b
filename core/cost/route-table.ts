/**
 * The vendors' route tables, looked up per call: a method and canonical path segments find the
 * route pattern they fall on ('*' is one non-empty segment). Where a pattern with a literal and
 * one with '*' in its place both match (`/v1/invoices/create_preview`, `/v1/invoices/*`), the
 * one with more literal segments wins. Patterns are bucketed by method, length and their first
 * `literalPrefix` segments (literal in every pattern of a table), so a call is compared with a
 * handful of patterns, not the hundreds a vendor has. Pure.
 */
export interface RouteEntry<T> {
  readonly method: string;
  readonly segments: readonly string[];
  readonly value: T;
}

interface Compiled<T> {
  readonly segments: readonly string[];
  readonly value: T;
}

export class RouteTable<T> {
  private readonly buckets = new Map<string, Compiled<T>[]>();

  constructor(
    entries: Iterable<RouteEntry<T>>,
    private readonly literalPrefix: number,
  ) {
    for (const { method, segments, value } of entries) {
      if (segments.slice(0, literalPrefix).some((segment) => segment === '*')) {
        throw new Error(`route ${method} /${segments.join('/')}: its first ${literalPrefix} segments must be literal`);
      }
      const key = this.bucketKey(method, segments);
      const bucket = this.buckets.get(key) ?? [];
      bucket.push({ segments, value });
      this.buckets.set(key, bucket);
    }
    // Most literal segments first: the first match is the most specific.
    for (const bucket of this.buckets.values()) bucket.sort((a, b) => wildcards(a.segments) - wildcards(b.segments));
  }

  find(method: string, segments: readonly string[]): T | undefined {
    if (segments.length < this.literalPrefix) return undefined;
    const bucket = this.buckets.get(this.bucketKey(method, segments));
    if (bucket === undefined) return undefined;
    for (const route of bucket) if (matches(route.segments, segments)) return route.value;
    return undefined;
  }

  private bucketKey(method: string, segments: readonly string[]): string {
    let key = `${method} ${segments.length}`;
    for (let i = 0; i < this.literalPrefix; i++) key += ` ${segments[i]}`;
    return key;
  }
}

function wildcards(segments: readonly string[]): number {
  return segments.filter((segment) => segment === '*').length;
}

function matches(pattern: readonly string[], segments: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const segment = segments[i]!;
    if (pattern[i] === '*' ? segment === '' : pattern[i] !== segment) return false;
  }
  return true;
}
