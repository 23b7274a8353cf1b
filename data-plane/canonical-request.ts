/**
 * Canonicalisation of the request target. The allowlist is matched against exactly the path
 * that is forwarded, so anything with more than one reading is refused here, before any
 * lookup, and never forwarded. Pure.
 */
import { CANONICAL_SEGMENT } from '../core/canonical-path.js';
import { isVendor, type Vendor } from '../core/vendors.js';
import { malformed } from './proxy-error.js';
import { excerpt, quote } from '../core/quote.js';

export interface CanonicalTarget {
  /** The vendor named by the path prefix; null for Stripe's bare /v1 and /v2 paths. */
  readonly prefixVendor: Vendor | null;
  /** Path segments in the vendor's own path space (prefix removed). */
  readonly segments: readonly string[];
  /** The query exactly as received, without "?"; forwarded byte for byte. */
  readonly query: string;
}

// Printable ASCII without space: anything else in a target is refused outright.
const PRINTABLE_ASCII = /^[\x21-\x7e]*$/;
const QUERY_CHARS = /^[A-Za-z0-9._~:@!$&'()*+,;=/?[\]%-]*$/;
const PERCENT_TRIPLET = /%(?![0-9A-Fa-f]{2})/;
const METHOD_OVERRIDE_PARAM = /(?:^|&)_method=/i;
const BARE_STRIPE_ROOTS = new Set(['v1', 'v2']);

export function canonicaliseTarget(target: string): CanonicalTarget {
  if (!target.startsWith('/')) throw malformed('request target must be a path (absolute-form and authority-form targets are refused)');
  if (!PRINTABLE_ASCII.test(target)) throw malformed('request target must be printable ASCII');
  if (target.includes('#')) throw malformed('request target must not contain a fragment');
  const questionMark = target.indexOf('?');
  const path = questionMark === -1 ? target : target.slice(0, questionMark);
  const query = questionMark === -1 ? '' : target.slice(questionMark + 1);

  if (path.includes('%')) throw malformed('percent-encoded characters in the path are refused');
  if (path.includes('\\')) throw malformed('backslashes in the path are refused');
  if (path.includes(';')) throw malformed('";" path parameters are refused');

  let segments = path.slice(1).split('/');
  let prefixVendor: Vendor | null = null;
  const first = segments[0] ?? '';
  if (isVendor(first)) {
    prefixVendor = first;
    segments = segments.slice(1);
    // stripe-python with a base URL ending in "/" sends "/stripe//v1/…": one extra slash here only.
    if (segments[0] === '' && segments.length > 1) segments = segments.slice(1);
  } else if (!BARE_STRIPE_ROOTS.has(first)) {
    throw malformed(`unknown route /${excerpt(first)}: paths start with /stripe, /twilio, /resend, or Stripe's /v1 and /v2`);
  }
  if (segments.length === 0 || (segments.length === 1 && segments[0] === '')) throw malformed('the path names no vendor endpoint');
  for (const segment of segments) {
    if (segment === '') throw malformed('empty path segments ("//" or a trailing "/") are refused');
    if (segment === '.' || segment === '..') throw malformed('dot segments are refused');
    if (!CANONICAL_SEGMENT.test(segment)) throw malformed(`path segment ${quote(segment)} has characters a vendor path never has`);
  }

  if (!QUERY_CHARS.test(query)) throw malformed('the query has characters that must be percent-encoded');
  if (PERCENT_TRIPLET.test(query)) throw malformed('the query has a malformed percent-encoding');
  if (METHOD_OVERRIDE_PARAM.test(query)) throw malformed('method-override parameters (_method) are refused');

  return { prefixVendor, segments, query };
}

/** Headers that would make some servers treat the request as another method. */
export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;

/** Hop-by-hop headers (RFC 9110 §7.6.1) and proxy credentials: never forwarded either way. */
export const HOP_BY_HOP_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);
