/**
 * The records of an AuditBatch: the encoded `records`, then the `jsonl` lines (a data plane
 * sends its spool's lines as written). Each line is read through the generated fromJSON, so a
 * field of the wrong type becomes its zero value instead of reaching PostgreSQL as something else.
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

/** fromJSON turns a number field that holds an object into NaN: make it the zero value too. */
function finite(record: AuditRecord): AuditRecord {
  const fields = record as unknown as Record<string, unknown>;
  for (const [name, value] of Object.entries(fields)) if (typeof value === 'number' && !Number.isFinite(value)) fields[name] = 0;
  return record;
}
