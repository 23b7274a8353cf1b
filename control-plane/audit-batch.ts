/**
 * The records of an AuditBatch (the encoded `records`, then the `jsonl` lines a data plane
 * sends as its spool wrote them), checked where they are stored: every field must have a value
 * its column takes (type, range, text PostgreSQL can store, the lengths of
 * core/audit-record-bounds.ts). A line that passes goes to PostgreSQL exactly as it came, as
 * part of one JSON array (audit-store.ts), which costs the control plane almost nothing per
 * record. A record that does not pass is made storable here (fields cut or cleaned, numbers
 * out of range replaced) and carries a `flag` saying what was changed; a line that is not a
 * record at all is kept aside as `unreadable`. Either way the records behind it are stored:
 * nothing one record holds can stop the audit trail. Pure.
 */
import {
  AUDIT_BIGINT_FIELDS,
  AUDIT_DECISIONS,
  AUDIT_INT_RANGES,
  AUDIT_TEXT_FIELDS,
  AUDIT_TEXT_LIMITS,
  boundText,
  isBoundedText,
} from '../core/audit-record-bounds.js';
import type { AuditBatch, AuditRecord } from '../gen/keybrake/v1/dataplane.js';

/** A record as stored: the data plane's fields, and what the control plane had to change. */
export interface StoredRecord {
  readonly record: AuditRecord;
  /** '' when stored exactly as sent. */
  readonly flag: string;
  /** The record as one JSON object, the row PostgreSQL reads (json_to_recordset). */
  readonly json: string;
}

export interface ReadAuditBatch {
  readonly records: readonly StoredRecord[];
  /** Lines that are not an audit record at all (not JSON, no incarnation or seq). */
  readonly unreadable: readonly { readonly line: string; readonly error: string }[];
}

/** Latest instant a record may carry: 9999-12-31, the end of what PostgreSQL timestamps and JS dates share. */
const MAX_TS_UNIX_MS = 253_402_300_799_999;

export function readAuditBatch(batch: AuditBatch, receivedAtMs = Date.now()): ReadAuditBatch {
  const records: StoredRecord[] = [];
  const unreadable: { line: string; error: string }[] = [];
  for (const record of batch.records) records.push(checked({ ...record }, null, receivedAtMs));
  if (batch.jsonl.length > 0) {
    for (const line of Buffer.from(batch.jsonl).toString('utf8').split('\n')) {
      if (line === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        unreadable.push({ line, error: 'not JSON' });
        continue;
      }
      if (!isIdentified(parsed)) {
        unreadable.push({ line, error: 'not an audit record (no incarnation and seq)' });
        continue;
      }
      records.push(checked(parsed, line, receivedAtMs));
    }
  }
  return { records, unreadable };
}

/** A record's identity (incarnation, seq) is what acks name: without it a line cannot be placed. */
function isIdentified(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const record = value as Record<string, unknown>;
  return typeof record['incarnation'] === 'string' && Number.isSafeInteger(record['seq']) && (record['seq'] as number) > 0;
}

/** The record as sent when every field is fine (`line` is then its row as it is), else made storable and flagged. */
function checked(fields: Record<string, unknown>, line: string | null, receivedAtMs: number): StoredRecord {
  const problems = problemsOf(fields);
  if (problems.length === 0) {
    const record = fields as unknown as AuditRecord;
    return { record, flag: '', json: line ?? JSON.stringify(record) };
  }
  const record = storable(fields, receivedAtMs);
  const flag = `changed by the control plane: ${problems.join('; ')}`;
  return { record, flag, json: JSON.stringify({ ...record, flag }) };
}

/** Read once, not per record (this runs for every record a data plane sends). */
const INT_RANGES = Object.entries(AUDIT_INT_RANGES);

/** What is wrong with each field, as short phrases; empty when the record is stored as sent. */
export function problemsOf(fields: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const name of AUDIT_TEXT_FIELDS) {
    const text = fields[name];
    if (typeof text !== 'string') problems.push(`${name} is not text`);
    else if (!isBoundedText(text, AUDIT_TEXT_LIMITS[name])) problems.push(`${name} cut to ${AUDIT_TEXT_LIMITS[name]} characters or cleaned of control characters`);
  }
  for (const name of AUDIT_BIGINT_FIELDS) if (!Number.isSafeInteger(fields[name])) problems.push(`${name} is not a whole number`);
  const ts = fields['tsUnixMs'];
  if (Number.isSafeInteger(ts) && ((ts as number) < 0 || (ts as number) > MAX_TS_UNIX_MS)) problems.push('tsUnixMs is out of range (replaced by the time it was received)');
  for (const [name, [min, max]] of INT_RANGES) {
    const value = fields[name];
    // callCount is absent in lines from data planes that predate it.
    if (value === undefined && name === 'callCount') continue;
    if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) problems.push(`${name} is out of range`);
  }
  if (typeof fields['decision'] === 'string' && !AUDIT_DECISIONS.includes(fields['decision'])) problems.push('decision is neither allowed nor denied');
  if (typeof fields['replayed'] !== 'boolean') problems.push('replayed is not a boolean');
  return problems;
}

function storable(fields: Record<string, unknown>, receivedAtMs: number): AuditRecord {
  const text = (name: (typeof AUDIT_TEXT_FIELDS)[number]) => boundText(typeof fields[name] === 'string' ? (fields[name] as string) : '', AUDIT_TEXT_LIMITS[name]);
  const whole = (name: string, fallback: number) => (Number.isSafeInteger(fields[name]) ? (fields[name] as number) : fallback);
  const inRange = (name: keyof typeof AUDIT_INT_RANGES, fallback: number) => {
    const value = whole(name, fallback);
    const [min, max] = AUDIT_INT_RANGES[name];
    return value < min || value > max ? fallback : value;
  };
  const ts = whole('tsUnixMs', receivedAtMs);
  const usdMicros = whole('usdMicros', 0);
  const decision = text('decision');
  return {
    seq: fields['seq'] as number,
    incarnation: text('incarnation'),
    tsUnixMs: ts < 0 || ts > MAX_TS_UNIX_MS ? receivedAtMs : ts,
    keyId: text('keyId'),
    label: text('label'),
    vendor: text('vendor'),
    method: text('method'),
    path: text('path'),
    status: inRange('status', 0),
    // A record that says neither: it counts as forwarded if it says money moved.
    decision: AUDIT_DECISIONS.includes(decision) ? decision : usdMicros > 0 ? 'allowed' : 'denied',
    reason: text('reason'),
    amount: whole('amount', -1),
    currency: text('currency'),
    estimatedUsdMicros: whole('estimatedUsdMicros', 0),
    usdMicros,
    idempotencyKey: text('idempotencyKey'),
    vendorRequestId: text('vendorRequestId'),
    vendorObjectId: text('vendorObjectId'),
    stripeChargeId: text('stripeChargeId'),
    replayed: fields['replayed'] === true,
    latencyMs: inRange('latencyMs', 0),
    callCount: inRange('callCount', 0),
  };
}

/**
 * The least of a record that tells what happened, for a record PostgreSQL refused even after
 * the checks above: its identity, key, vendor, decision and money, and no caller text.
 */
export function minimalRecord(stored: StoredRecord, refusal: string): StoredRecord {
  const r = stored.record;
  const record: AuditRecord = {
    ...r,
    label: '', path: '', reason: boundText(r.reason, 64), currency: '', idempotencyKey: '', vendorRequestId: '', vendorObjectId: '', stripeChargeId: '',
  };
  const flag = boundText(`stored without its text fields: PostgreSQL refused the record (${refusal})${stored.flag === '' ? '' : `; ${stored.flag}`}`, 1000);
  return { record, flag, json: JSON.stringify({ ...record, flag }) };
}
