/**
 * One adapter per vendor, all of the same shape: where the vault key sits in the request,
 * how the real credential is put in, how the forwarded path is derived, and how a denial
 * looks in the vendor's own error format. Adding a vendor means adding one adapter.
 */
import type { IncomingHttpHeaders } from 'node:http';

import type { Vendor } from '../../core/vendors.js';
import type { ProxyError } from '../proxy-error.js';

export interface VendorCredential {
  readonly secret: string;
  /** Twilio only. */
  readonly accountSid: string;
}

export interface VendorDenial {
  readonly body: unknown;
  readonly headers: Record<string, string>;
}

export interface VendorAdapter {
  readonly vendor: Vendor;
  /** The vault key the caller presented, or null when there is none in the vendor's usual place. */
  vaultKeyFrom(headers: IncomingHttpHeaders): string | null;
  /** The path segments to forward (Twilio puts the real account SID in). */
  forwardedSegments(segments: readonly string[], credential: VendorCredential): readonly string[];
  /** The Authorization header value that carries the real credential. */
  authorization(credential: VendorCredential): string;
  /** Request headers the key must explicitly allow (Stripe's account switching). */
  readonly guardedHeaders: readonly string[];
  /**
   * The raw secrets that must never leave in a response, unencoded: scrub.ts's `secretFormsFor`
   * derives every form a vendor may echo them in (base64 at any alignment, hex, escapes).
   */
  secretForms(credential: VendorCredential): readonly string[];
  denial(error: ProxyError): VendorDenial;
}

/** `Authorization: Bearer <token>` → token. */
export function bearerToken(headers: IncomingHttpHeaders): string | null {
  const value = headers.authorization;
  if (value === undefined) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1] ?? null;
}

/** `Authorization: Basic base64(user:password)` → [user, password]. */
export function basicCredentials(headers: IncomingHttpHeaders): [string, string] | null {
  const value = headers.authorization;
  if (value === undefined) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(value);
  if (match === null) return null;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? [decoded, ''] : [decoded.slice(0, colon), decoded.slice(colon + 1)];
}
