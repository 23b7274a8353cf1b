/**
 * What a canonical path segment may contain. Endpoint patterns are validated against it at
 * issue time and request paths at the data plane, so a pattern can only ever name paths the
 * proxy would forward. Deliberately narrow: every vendor path we serve fits in it, and
 * anything else (percent-encoding, `;` parameters, backslashes, non-ASCII) is ambiguous.
 */
export const CANONICAL_SEGMENT = /^[A-Za-z0-9._~:@-]+$/;
