/**
 * What the operator API takes in a filter, a name, a time or a page cursor, whichever transport
 * brings it (an HTTP query or JSON body, a gRPC message). OperatorService checks these for both
 * transports, so a value PostgreSQL would refuse (a NUL, a time past its range) is a named
 * `invalid_argument` and never reaches the database as a 500. Pure.
 */
import { invalidField } from '../core/operator-error.js';
import { AUDIT_TEXT_LIMITS } from '../core/audit-record-bounds.js';
import { quote } from '../core/quote.js';
import { CONTROL_CHARACTER, LONE_SURROGATE } from '../core/text.js';

/**
 * Times (`since`, `until`) lie from 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z:
 * PostgreSQL's timestamptz, a JS Date and a protobuf Timestamp hold all of it, its ISO 8601 text
 * has a plain 4-digit year, and no audit record is older than the epoch.
 */
export const EARLIEST_TIME_MS = 0;
export const LATEST_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
export const TIME_RANGE_TEXT = 'from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z';

/**
 * Longest value of each text filter, in UTF-16 code units: a key's label is at most 200
 * characters, Stripe's Idempotency-Key at most 255, a vault key id 23, a vendor object id a few
 * dozen. Cursors this API hands out are under 900: a key-listing cursor holds a label (at most
 * 600 bytes of UTF-8) and a key id, in base64url.
 */
export const FILTER_MAX_LENGTH = {
  // A filter matches what the audit trail stores: no longer than that.
  label: AUDIT_TEXT_LIMITS.label,
  label_prefix: AUDIT_TEXT_LIMITS.label,
  idempotency_key: AUDIT_TEXT_LIMITS.idempotencyKey,
  key_id: AUDIT_TEXT_LIMITS.keyId,
  vendor_object_id: AUDIT_TEXT_LIMITS.vendorObjectId,
  cursor: 1024,
} as const;

/**
 * Checks text a caller sent: at most `max` characters, no NUL (PostgreSQL text cannot hold one),
 * no lone surrogate (not Unicode text: it would be stored as U+FFFD and match something else),
 * and with `controls: false` no control character at all (as key labels and token names).
 */
export function checkText(text: string, field: string, max: number, options: { readonly controls?: boolean } = {}): string {
  if (text.length > max) throw invalidField(field, `longer than ${max} characters (${text.length})`);
  if (options.controls === false && CONTROL_CHARACTER.test(text)) throw invalidField(field, 'must not contain control characters');
  if (text.includes('\u0000')) throw invalidField(field, 'must not contain NUL (U+0000)');
  if (LONE_SURROGATE.test(text)) throw invalidField(field, 'must be Unicode text (it has a lone surrogate)');
  return text;
}

/** True for text checkText would take (any control character but NUL allowed). */
export function isStorableText(text: string, max: number): boolean {
  return text.length <= max && !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The JSON inside a base64url cursor this API handed out (at most FILTER_MAX_LENGTH.cursor), or undefined for anything else. */
export function decodeCursorJson(cursor: string): unknown {
  if (cursor.length > FILTER_MAX_LENGTH.cursor || !/^[A-Za-z0-9_-]*$/.test(cursor)) return undefined;
  try {
    return JSON.parse(STRICT_UTF8.decode(Buffer.from(cursor, 'base64url'))) as unknown;
  } catch {
    return undefined;
  }
}

/** A time filter: absent, or a valid time within the range above; returns its milliseconds. */
export function checkTime(time: Date | undefined, field: string): number | undefined {
  if (time === undefined) return undefined;
  const ms = time.getTime();
  if (!Number.isFinite(ms) || ms < EARLIEST_TIME_MS || ms > LATEST_TIME_MS) throw invalidField(field, `must be a time ${TIME_RANGE_TEXT}`);
  return ms;
}

/**
 * A field or parameter name someone sent, fit to lead a message: as it is when it looks like a
 * name (`daily_cap`), otherwise quoted and cut (`"aaaa…" (800000 characters)`, `"a\u0000b"`).
 */
export function fieldName(name: string): string {
  return /^[A-Za-z0-9_.[\]-]{1,64}$/.test(name) ? name : quote(name);
}
