/**
 * The request pipeline's stages, each a small function that can be tested alone:
 * limits → canonicalise → fresh policy → authenticate → authorise → (price and reserve) →
 * forward → (settle and audit) → respond. Everything here is pure; proxy.ts does the I/O.
 */
import type { IncomingHttpHeaders } from 'node:http';

import { matchesEndpoint } from '../core/endpoint-pattern.js';
import type { Vendor } from '../core/vendors.js';
import { HOP_BY_HOP_HEADERS, METHOD_OVERRIDE_HEADERS } from './canonical-request.js';
import type { CachedKey, PolicyCache } from './policy-cache.js';
import { malformed, ProxyError } from './proxy-error.js';
import { AUDIT_TEXT_LIMITS } from '../core/audit-record-bounds.js';
import { excerpt, quote } from '../core/quote.js';
import { basicCredentials, bearerToken, type VendorAdapter, type VendorCredential } from './vendors/index.js';

export const MAX_HEADER_COUNT = 100;

/** Request headers that never reach a vendor, besides hop-by-hop ones and those `Connection` names. */
const NEVER_FORWARDED = new Set([
  'host', 'authorization', 'content-length', 'expect', 'cookie', 'accept-encoding',
  'forwarded', 'via', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip',
  ...METHOD_OVERRIDE_HEADERS,
]);

/**
 * The largest request body each vendor's calls need, below the operator's KEYBRAKE_MAX_BODY_BYTES.
 * A Stripe form is small (a Checkout Session with 100 line items and their product data is tens
 * of KiB), and so is a Twilio message or call; Resend's emails carry attachments as base64 and
 * take what the operator allows. Pricing parses every byte of a money-moving call's body: a
 * limit that fits the vendor bounds what one request can cost the data plane's CPU.
 */
export const REQUEST_BODY_LIMITS: Readonly<Record<Vendor, number | null>> = {
  stripe: 256 * 1024,
  twilio: 64 * 1024,
  resend: null,
};

export function requestBodyLimit(vendor: Vendor, configuredMaxBytes: number): number {
  const limit = REQUEST_BODY_LIMITS[vendor];
  return limit === null ? configuredMaxBytes : Math.min(limit, configuredMaxBytes);
}

/** Stripe's bound; Resend's keys are shorter still. The audit trail stores the key as sent. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = AUDIT_TEXT_LIMITS.idempotencyKey;
const IDEMPOTENCY_KEY_CHARS = /^[\x20-\x7e]*$/;

export function checkRequestHeaders(rawHeaders: readonly string[], headers: IncomingHttpHeaders): void {
  if (rawHeaders.length / 2 > MAX_HEADER_COUNT) throw new ProxyError('headers_too_large', `more than ${MAX_HEADER_COUNT} request headers`);
  checkIdempotencyKey(rawHeaders);
  // A body the proxy would price as one thing while the vendor decodes it as another.
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw malformed(`Content-Encoding ${quote(encoding)} is refused: send the request body unencoded, so that what is priced is what the vendor reads`);
  }
  for (const name of METHOD_OVERRIDE_HEADERS) {
    if (headers[name] !== undefined) throw malformed(`method-override header ${name} is refused`);
  }
  if (headers['transfer-encoding'] !== undefined && headers['content-length'] !== undefined) {
    throw malformed('both Transfer-Encoding and Content-Length are set');
  }
}

/**
 * One Idempotency-Key of at most 255 printable ASCII characters, or none. Two would be joined
 * by node into one value that neither the vendor nor the audit trail would read the same way.
 */
function checkIdempotencyKey(rawHeaders: readonly string[]): void {
  let seen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 15 || name.toLowerCase() !== 'idempotency-key') continue;
    if (seen) throw malformed('Idempotency-Key is given more than once');
    seen = true;
    const value = rawHeaders[i + 1]!;
    if (value.length > MAX_IDEMPOTENCY_KEY_LENGTH) throw malformed(`Idempotency-Key is longer than ${MAX_IDEMPOTENCY_KEY_LENGTH} characters (${value.length})`);
    if (!IDEMPOTENCY_KEY_CHARS.test(value)) throw malformed('Idempotency-Key must be printable ASCII');
  }
}

/** Fail closed: with no word from any control plane for a lease TTL, serve nothing. */
export function requireFreshPolicy(cache: PolicyCache, monotonicNowMs: number, leaseTtlMs: number): void {
  const silence = cache.silenceMs(monotonicNowMs);
  if (silence > leaseTtlMs) {
    const detail = silence === Number.POSITIVE_INFINITY ? 'has not reached a control plane yet' : `has not heard from a control plane for ${Math.round(silence / 1000)} s`;
    throw new ProxyError('control_plane_unavailable', `this data plane ${detail}; nothing was forwarded`);
  }
}

/**
 * The authenticate stage: the key the request presents, checked. Synchronous for a key this data
 * plane holds; a promise while a key presented here for the first time is looked up (one
 * control-plane round trip, batched with other first calls of the same moment).
 */
export function authenticate(cache: PolicyCache, adapter: VendorAdapter, headers: IncomingHttpHeaders, monotonicNowMs: number, wallNowMs: number): CachedKey | Promise<CachedKey> {
  const presented = adapter.vaultKeyFrom(headers);
  if (presented === null) throw new ProxyError('vault_key_invalid', `no vault key: send it where ${adapter.vendor}'s SDK puts its API key`);
  const resolution = cache.resolve(presented, monotonicNowMs);
  switch (resolution.kind) {
    case 'key':
      return checkKey(resolution.key, adapter, wallNowMs);
    case 'malformed':
      throw new ProxyError('vault_key_invalid', 'not a Keybrake vault key (kbv_…) or mistyped');
    case 'unknown':
      throw unknownKey();
    case 'pending':
      return resolution.answer.then((answer) => {
        if (answer === 'unknown') throw unknownKey();
        if (answer === 'unavailable') throw new ProxyError('control_plane_unavailable', 'this vault key is new to this data plane and no control plane answered its lookup in time; nothing was forwarded');
        return checkKey(answer, adapter, Date.now());
      });
  }
}

function unknownKey(): ProxyError {
  return new ProxyError('vault_key_invalid', 'unknown vault key');
}

/** A held key: refused when revoked, expired, or another vendor's. */
export function checkKey(key: CachedKey, adapter: VendorAdapter, wallNowMs: number): CachedKey {
  const subject = key.policy;
  if (key.policy.revoked) throw new ProxyError('vault_key_revoked', `vault key ${key.policy.id} was revoked`, { subject });
  if (wallNowMs >= key.policy.expiresAtUnixMs) {
    throw new ProxyError('vault_key_expired', `vault key ${key.policy.id} expired at ${new Date(key.policy.expiresAtUnixMs).toISOString()}`, { subject });
  }
  if (key.vendor !== adapter.vendor) throw new ProxyError('vault_key_invalid', `vault key ${key.policy.id} is for ${key.vendor}, not ${adapter.vendor}`, { subject });
  return key;
}

/**
 * The key a request presents, wherever an SDK puts it (Bearer, Basic user or password), for the
 * audit record of a call refused before its key was looked at (a malformed target, a bad
 * header): every call made with a real key keeps a record of its own under that key. A key this
 * data plane does not hold yet is looked up like any first call (forged keys are not: their tag
 * gives them away). Only on refusals; null when no presented key is a real one.
 */
export async function identifyPresentedKey(cache: PolicyCache, headers: IncomingHttpHeaders, monotonicNowMs: number): Promise<CachedKey | null> {
  const basic = basicCredentials(headers);
  const candidates = [bearerToken(headers), basic?.[0] ?? null, basic?.[1] ?? null];
  for (const candidate of candidates) {
    if (candidate === null || candidate === '') continue;
    const resolution = cache.resolve(candidate, monotonicNowMs);
    if (resolution.kind === 'key') return resolution.key;
    if (resolution.kind === 'pending') {
      const answer = await resolution.answer;
      if (typeof answer !== 'string') return answer;
    }
  }
  return null;
}

/**
 * Matches exactly what will be forwarded (`segments`). The refusal names the path as the caller
 * sent it (`requestedPath`): for Twilio the forwarded one carries the real account SID.
 */
export function authorise(key: CachedKey, method: string, segments: readonly string[], requestedPath = `/${segments.join('/')}`): void {
  if (!key.allowlist.some((pattern) => matchesEndpoint(pattern, method, segments))) {
    throw new ProxyError('endpoint_not_allowed', `${excerpt(method, 16)} ${excerpt(requestedPath)} is not on vault key ${key.policy.id}'s allowlist`);
  }
}

export function checkGuardedHeaders(adapter: VendorAdapter, headers: IncomingHttpHeaders): void {
  for (const name of adapter.guardedHeaders) {
    // No key allows account switching yet: a call meant for a connected account must not
    // silently run on the platform account instead, so it is refused, not stripped.
    if (headers[name] !== undefined) throw new ProxyError('endpoint_not_allowed', `the ${name} header is not allowed by this vault key`);
  }
}

export function requireCredential(cache: PolicyCache, vendor: Vendor): VendorCredential {
  const credential = cache.credential(vendor);
  if (credential === null) throw new ProxyError('vendor_not_configured', `no ${vendor} credential is stored in Keybrake; an operator must set one`);
  return credential;
}

/**
 * The headers sent upstream, in the caller's order and spelling (Stripe-Version and
 * Idempotency-Key pass byte for byte), minus everything that must not reach the vendor,
 * plus the real credential.
 */
export function upstreamHeaders(rawHeaders: readonly string[], headers: IncomingHttpHeaders, adapter: VendorAdapter, credential: VendorCredential, bodyLength: number | null): string[] {
  const named = connectionNamed(headers.connection);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    // guardedHeaders holds at most a couple of names: no Set built per call.
    if (HOP_BY_HOP_HEADERS.has(lower) || NEVER_FORWARDED.has(lower) || named.has(lower) || adapter.guardedHeaders.includes(lower)) continue;
    if (lower.startsWith('proxy-') || lower.startsWith('keybrake-')) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  out.push('authorization', adapter.authorization(credential));
  // Identity encoding: a compressed body could hide an echoed secret from the scrubber.
  out.push('accept-encoding', 'identity');
  if (bodyLength !== null) out.push('content-length', String(bodyLength));
  return out;
}

/**
 * Upstream response headers minus hop-by-hop ones, secrets scrubbed, as the flat
 * [name, value, …] list `writeHead` takes (no second object per answer). Lengths are recomputed:
 * content-length is left out.
 */
export function downstreamHeaders(headers: Record<string, string | string[] | undefined>, scrub: (text: string) => string): string[] {
  const named = connectionNamed(headers['connection']);
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP_HEADERS.has(lower) || named.has(lower) || lower === 'content-length' || lower.startsWith('proxy-')) continue;
    if (typeof value === 'string') out.push(name, scrub(value));
    else for (const each of value) out.push(name, scrub(each));
  }
  return out;
}

const NONE: ReadonlySet<string> = new Set();

function connectionNamed(value: string | string[] | undefined): ReadonlySet<string> {
  // Most requests name nothing but keep-alive (or send no Connection header at all).
  if (value === undefined || value === 'keep-alive' || value === 'close') return NONE;
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(text.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== ''));
}
