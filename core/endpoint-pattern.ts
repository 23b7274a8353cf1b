/**
 * Allowlist entries: "METHOD /path" in the vendor's own path space, where a segment "*"
 * matches exactly one path segment. Patterns are validated at issue time so that the data
 * plane only ever matches well-formed patterns against canonical paths.
 */
import { CANONICAL_SEGMENT } from './canonical-path.js';
import { invalidField } from './operator-error.js';
import { type Vendor, vendorPathRoots } from './vendors.js';
import { quote } from './quote.js';

export const ALLOWED_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type HttpMethod = (typeof ALLOWED_METHODS)[number];

export interface EndpointPattern {
  readonly method: HttpMethod;
  /** Path segments without slashes; "*" is the one-segment wildcard. */
  readonly segments: readonly string[];
}

const MAX_PATTERN_LENGTH = 512;

export function parseEndpointPattern(text: string, vendor: Vendor, field: string): EndpointPattern {
  const fail = (problem: string) => invalidField(field, `${quote(text)}: ${problem}`);
  if (text.length > MAX_PATTERN_LENGTH) throw fail(`longer than ${MAX_PATTERN_LENGTH} characters`);
  const parts = text.split(' ');
  if (parts.length !== 2) throw fail('expected "METHOD /path", e.g. "POST /v1/payment_intents"');
  const [methodText = '', path = ''] = parts;
  const method = methodText.toUpperCase();
  if (!(ALLOWED_METHODS as readonly string[]).includes(method)) {
    throw fail(`unknown method ${quote(methodText)} (expected one of ${ALLOWED_METHODS.join(', ')})`);
  }
  if (!path.startsWith('/')) throw fail('path must start with "/"');
  if (path.includes('?') || path.includes('#')) throw fail('path must not contain a query or fragment');
  if (path.startsWith(`/${vendor}/`)) {
    throw fail(`write the path in ${vendor}'s own path space, without the proxy's /${vendor} prefix`);
  }
  const roots = vendorPathRoots(vendor);
  if (!roots.some((root) => path.startsWith(root))) {
    throw fail(`${vendor} paths start with ${roots.map((r) => JSON.stringify(r)).join(' or ')}`);
  }
  const segments = path.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '') throw fail('empty path segment (double or trailing slash)');
    if (segment === '.' || segment === '..') throw fail('dot segments are not allowed');
    if (segment.includes('*') && segment !== '*') throw fail('"*" must be a whole segment');
    if (segment !== '*' && !CANONICAL_SEGMENT.test(segment)) throw fail(`segment ${quote(segment)} has characters a canonical path never has`);
  }
  return { method: method as HttpMethod, segments };
}

export function formatEndpointPattern(pattern: EndpointPattern): string {
  return `${pattern.method} /${pattern.segments.join('/')}`;
}

/** True when the method and canonical path segments match the pattern exactly. */
export function matchesEndpoint(pattern: EndpointPattern, method: string, pathSegments: readonly string[]): boolean {
  if (pattern.method !== method || pattern.segments.length !== pathSegments.length) return false;
  return pattern.segments.every((segment, i) => segment === '*' || segment === pathSegments[i]);
}
