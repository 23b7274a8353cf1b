/**
 * The records of an AuditBatch: the encoded `records`, then the `jsonl` lines (a data plane
 * sends its spool's lines as written).
 *
 * Two ways to read them. `auditBatchRecords` reads each line through the generated fromJSON, so
 * a field of the wrong type becomes its zero value instead of reaching PostgreSQL as something
 * else. `readAuditBatch` first checks each parsed line against the record's shape (every field,
 * its type and range, text PostgreSQL can store); when every line passes, the lines themselves
 * go to PostgreSQL as one JSON array (audit-store.ts), which costs the control plane a fraction
 * of building one array parameter per column. Any line that does not pass sends the whole batch
 * the careful way.
 */
import { AuditRecord, type AuditBatch } from '../gen/keybrake/v1/dataplane.js';

export function auditBatchRecords(batch: AuditBatch): AuditRecord[] {
  const records = [...batch.records];
  if (batch.jsonl.length === 0) return records;
  for (const line of Buffer.from(batch.jsonl).toString('utf8').split('\n')) {
    if (line === '') continue;
    records.push(finite(AuditRecord.fromJSON(JSON.parse(line))));
  }
  return records;
}

export interface ReadAuditBatch {
  readonly records: readonly AuditRecord[];
  /** The lines as one JSON array, when every one is a well-formed record; null otherwise. */
  readonly jsonRows: string | null;
}

export function readAuditBatch(batch: AuditBatch): ReadAuditBatch {
  if (batch.records.length === 0 && batch.jsonl.length > 0) {
    const lines = Buffer.from(batch.jsonl).toString('utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    const records: AuditRecord[] = [];
    for (const line of lines) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        break;
      }
      if (!isWellFormedRecord(parsed)) break;
      records.push(parsed);
    }
    if (records.length === lines.length) return { records, jsonRows: `[${lines.join(',')}]` };
  }
  return { records: auditBatchRecords(batch), jsonRows: null };
}

const TEXT_FIELDS = [
  'incarnation', 'keyId', 'label', 'vendor', 'method', 'path', 'decision', 'reason', 'currency', 'idempotencyKey', 'vendorRequestId', 'vendorObjectId', 'stripeChargeId',
] as const satisfies readonly (keyof AuditRecord)[];
/** bigint columns: any safe integer. */
const BIGINT_FIELDS = ['seq', 'tsUnixMs', 'amount', 'estimatedUsdMicros', 'usdMicros'] as const satisfies readonly (keyof AuditRecord)[];
/** integer columns. */
const INT_FIELDS = ['status', 'latencyMs'] as const satisfies readonly (keyof AuditRecord)[];
const INT32_MAX = 2 ** 31 - 1;

/** Every field of an AuditRecord with a value its column takes as it is (of duplicate keys the last counts, here and in PostgreSQL's json functions). */
export function isWellFormedRecord(value: unknown): value is AuditRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const record = value as Record<string, unknown>;
  for (const name of TEXT_FIELDS) {
    const text = record[name];
    // PostgreSQL text holds neither NUL nor a lone surrogate.
    if (typeof text !== 'string' || text.includes('\u0000') || !isWellFormed(text)) return false;
  }
  for (const name of BIGINT_FIELDS) if (!Number.isSafeInteger(record[name])) return false;
  for (const name of INT_FIELDS) {
    const number = record[name];
    if (!Number.isSafeInteger(number) || Math.abs(number as number) > INT32_MAX) return false;
  }
  return typeof record['replayed'] === 'boolean';
}

/** ES2024's String.prototype.isWellFormed, which Node 20 has (the project's TypeScript lib is ES2023). */
const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();

/** fromJSON turns a number field that holds an object into NaN: make it the zero value too. */
function finite(record: AuditRecord): AuditRecord {
  const fields = record as unknown as Record<string, unknown>;
  for (const [name, value] of Object.entries(fields)) if (typeof value === 'number' && !Number.isFinite(value)) fields[name] = 0;
  return record;
}
