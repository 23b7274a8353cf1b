/**
 * What an audit record's fields may hold, for both planes: the data plane bounds every record
 * where it is made (before it is spooled), the control plane checks again where it is stored.
 * A field carries text from callers (an Idempotency-Key, a path) and from vendors (a request id,
 * an object id): left unbounded, one request could make a record PostgreSQL refuses (an index
 * row over its 2,704-byte limit, a NUL), and a refused record used to block every record behind
 * it. Pure.
 */
import type { AuditRecord } from '../gen/keybrake/v1/dataplane.js';
import { CONTROL_CHARACTER, cutAtCodePoint, LONE_SURROGATE } from './text.js';

/**
 * Longest text per field, in UTF-16 code units. Each is far below what a btree index row takes
 * (2,704 bytes: 255 characters are at most 1,020 bytes of UTF-8) and above anything legitimate:
 * Stripe's Idempotency-Key is at most 255 characters, labels 200, ids a few dozen.
 */
export const AUDIT_TEXT_LIMITS = {
  incarnation: 64,
  keyId: 64,
  label: 200,
  vendor: 16,
  method: 16,
  path: 1024,
  decision: 8,
  reason: 64,
  currency: 16,
  idempotencyKey: 255,
  vendorRequestId: 255,
  vendorObjectId: 255,
  stripeChargeId: 255,
} as const satisfies Partial<Record<keyof AuditRecord, number>>;

export type AuditTextField = keyof typeof AUDIT_TEXT_LIMITS;
export const AUDIT_TEXT_FIELDS = Object.keys(AUDIT_TEXT_LIMITS) as AuditTextField[];

/** bigint columns: any safe integer. */
export const AUDIT_BIGINT_FIELDS = ['seq', 'tsUnixMs', 'amount', 'estimatedUsdMicros', 'usdMicros'] as const satisfies readonly (keyof AuditRecord)[];
/** integer columns, with their ranges. */
export const AUDIT_INT_RANGES = {
  status: [0, 999],
  latencyMs: [0, 2 ** 31 - 1],
  callCount: [0, 2 ** 31 - 1],
} as const satisfies Partial<Record<keyof AuditRecord, readonly [number, number]>>;
export const AUDIT_DECISIONS: readonly string[] = ['allowed', 'denied'];

/** Control characters (NUL included) and lone surrogates: what no audit text keeps. */
const UNSTORABLE = new RegExp(`${CONTROL_CHARACTER.source}|${LONE_SURROGATE.source}`, 'g');
/** A cheap first test: any control character or surrogate at all (a pair is fine, and rare). */
const MAYBE_UNSTORABLE = /[\u0000-\u001f\u007f\ud800-\udfff]/;

/** True when `text` is stored as it is: short enough, and nothing unstorable in it. */
export function isBoundedText(text: string, max: number): boolean {
  if (text.length > max) return false;
  // Surrogates are rare: only then is the precise (pair-aware) test run.
  return !MAYBE_UNSTORABLE.test(text) || (!CONTROL_CHARACTER.test(text) && !LONE_SURROGATE.test(text));
}

/** `text` with unstorable characters replaced by U+FFFD and cut to `max` (a "…" marks the cut). */
export function boundText(text: string, max: number): string {
  const result = text.replace(UNSTORABLE, '\ufffd');
  return result.length > max ? `${cutAtCodePoint(result, max - 1)}…` : result;
}

/**
 * Makes every field of `record` storable, in place; returns the names of the fields it changed
 * (empty for a record that was already fine, which is nearly always).
 */
export function boundAuditRecord(record: AuditRecord): AuditTextField[] {
  const changed: AuditTextField[] = [];
  const fields = record as unknown as Record<string, unknown>;
  for (const name of AUDIT_TEXT_FIELDS) {
    const value = fields[name];
    const max = AUDIT_TEXT_LIMITS[name];
    const text = typeof value === 'string' ? value : '';
    if (typeof value === 'string' && isBoundedText(text, max)) continue;
    fields[name] = boundText(text, max);
    changed.push(name);
  }
  return changed;
}
