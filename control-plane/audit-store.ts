/**
 * The audit trail in PostgreSQL: idempotent batched inserts keyed by (data plane, incarnation,
 * sequence), newest-first queries with a cursor, day partitions created ahead and dropped
 * after the retention period.
 */
import type pg from 'pg';

import type { Logger } from '../core/logger.js';
import { invalidField } from '../core/operator-error.js';
import { boundText } from '../core/audit-record-bounds.js';
import type { AuditRecord } from '../gen/keybrake/v1/dataplane.js';
import { minimalRecord, type ReadAuditBatch, type StoredRecord } from './audit-batch.js';

export interface AuditFilter {
  readonly idempotencyKey?: string;
  readonly label?: string;
  readonly keyId?: string;
  readonly vendor?: string;
  readonly vendorObjectId?: string;
  readonly decision?: string;
  readonly sinceMs?: number;
  readonly untilMs?: number;
  readonly limit: number;
  readonly cursor?: string;
}

export interface AuditRow {
  readonly id: string;
  readonly ts: Date;
  readonly keyId: string;
  readonly label: string;
  readonly vendor: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly decision: string;
  readonly reason: string;
  readonly amount: number | null;
  readonly currency: string;
  readonly estimatedUsdMicros: number;
  readonly usdMicros: number;
  readonly idempotencyKey: string;
  readonly vendorRequestId: string;
  readonly vendorObjectId: string;
  readonly stripeChargeId: string;
  readonly dataplaneId: string;
  readonly latencyMs: number;
  readonly replayed: boolean;
  readonly callCount: number;
  readonly flag: string;
}

const COLUMNS = [
  'ts', 'dataplane_id', 'incarnation', 'seq', 'key_id', 'label', 'vendor', 'method', 'path', 'status', 'decision', 'reason', 'amount', 'currency',
  'estimated_usd_micros', 'usd_micros', 'idempotency_key', 'vendor_request_id', 'vendor_object_id', 'stripe_charge_id', 'replayed', 'latency_ms',
  'call_count', 'flag',
] as const;

/**
 * $1 the data plane, $2 a JSON array of records (their AuditRecord field names, plus `flag`
 * when the control plane changed one). Empty texts become NULL and a negative amount "none".
 * PostgreSQL's json functions take the last of duplicate keys, as JSON.parse does in
 * readAuditBatch (json, not jsonb: cheaper to read once). Lines from data planes that predate
 * `callCount` stand for one call.
 */
const INSERT_JSON_SQL = `INSERT INTO audit_records (${COLUMNS.join(',')})
  SELECT 'epoch'::timestamptz + r."tsUnixMs" * interval '1 millisecond', $1, r.incarnation, r.seq, nullif(r."keyId", ''), nullif(r.label, ''),
    r.vendor, r.method, r.path, r.status, r.decision, nullif(r.reason, ''), CASE WHEN r.amount < 0 THEN NULL ELSE r.amount END, nullif(r.currency, ''),
    r."estimatedUsdMicros", r."usdMicros", nullif(r."idempotencyKey", ''), nullif(r."vendorRequestId", ''), nullif(r."vendorObjectId", ''),
    nullif(r."stripeChargeId", ''), r.replayed, r."latencyMs", greatest(coalesce(r."callCount", 0), 1), nullif(r.flag, '')
  FROM json_to_recordset($2::json) AS r(
    "tsUnixMs" bigint, incarnation text, seq bigint, "keyId" text, label text, vendor text, method text, path text, status integer, decision text, reason text,
    amount bigint, currency text, "estimatedUsdMicros" bigint, "usdMicros" bigint, "idempotencyKey" text, "vendorRequestId" text, "vendorObjectId" text,
    "stripeChargeId" text, replayed boolean, "latencyMs" integer, "callCount" integer, flag text)
  ON CONFLICT DO NOTHING`;

const DAY_MS = 86_400_000;

/** What storing a batch took beyond the ordinary: records stored with a flag, lines kept aside. */
export interface InsertOutcome {
  readonly flagged: number;
  readonly quarantined: number;
}

/**
 * PostgreSQL refused the data itself: a data exception (class 22), a constraint (23) or a
 * program limit such as an index row too large (54). Retrying the same record cannot help.
 * Anything else (a lost connection, a full disk, a missing table) is the database's state and
 * is retried with the whole batch.
 */
function isRecordProblem(error: unknown): boolean {
  const code = String((error as { code?: unknown }).code ?? '');
  return code.startsWith('22') || code.startsWith('23') || code.startsWith('54');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class AuditStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  /**
   * Stores a batch in one statement; records already stored are ignored (idempotent on data
   * plane, incarnation and sequence). Should PostgreSQL refuse the batch for something a record
   * holds, each record is stored on its own, so the one it refuses cannot hold back the others:
   * that record is stored again without its caller-supplied text and flagged, or, if even that
   * is refused, kept in audit_quarantine. Lines that are not records go there too.
   */
  async insert(dataplaneId: string, batch: ReadAuditBatch): Promise<InsertOutcome> {
    const { records, unreadable } = batch;
    let flagged = records.reduce((n, r) => n + (r.flag === '' ? 0 : 1), 0);
    let quarantined = 0;
    if (records.length > 0) {
      try {
        await this.insertRows(dataplaneId, records);
      } catch (error) {
        if (!isRecordProblem(error)) throw error;
        this.logger.warn({ err: messageOf(error), dataplane_id: dataplaneId }, 'PostgreSQL refused an audit batch; storing its records one by one');
        for (const stored of records) {
          const outcome = await this.insertAlone(dataplaneId, stored);
          if (outcome === 'flagged' && stored.flag === '') flagged++;
          if (outcome === 'quarantined') quarantined++;
        }
      }
    }
    for (const { line, error } of unreadable) {
      await this.quarantine(dataplaneId, null, error, line);
      quarantined++;
    }
    return { flagged, quarantined };
  }

  private async insertRows(dataplaneId: string, rows: readonly StoredRecord[]): Promise<void> {
    const json = rows.length === 1 ? `[${rows[0]!.json}]` : `[${rows.map((r) => r.json).join(',')}]`;
    await this.pool.query({ name: 'keybrake-audit-insert-json', text: INSERT_JSON_SQL, values: [dataplaneId, json] });
  }

  private async insertAlone(dataplaneId: string, stored: StoredRecord): Promise<'stored' | 'flagged' | 'quarantined'> {
    try {
      await this.insertRows(dataplaneId, [stored]);
      return 'stored';
    } catch (error) {
      if (!isRecordProblem(error)) throw error;
      const refusal = messageOf(error);
      this.logger.error({ err: refusal, dataplane_id: dataplaneId, incarnation: stored.record.incarnation, seq: stored.record.seq }, 'PostgreSQL refused an audit record; storing it without its text fields');
      try {
        await this.insertRows(dataplaneId, [minimalRecord(stored, refusal)]);
        return 'flagged';
      } catch (again) {
        if (!isRecordProblem(again)) throw again;
        await this.quarantine(dataplaneId, stored.record, `${refusal}; then, stored without its text fields: ${messageOf(again)}`, stored.json);
        return 'quarantined';
      }
    }
  }

  /** Keeps what could not be stored as a record, as bytes; the same line twice is kept once. */
  private async quarantine(dataplaneId: string, record: AuditRecord | null, error: string, line: string): Promise<void> {
    this.logger.error({ dataplane_id: dataplaneId, incarnation: record?.incarnation, seq: record?.seq, err: error }, 'an audit line could not be stored as a record; kept in audit_quarantine');
    await this.pool.query(
      `INSERT INTO audit_quarantine (dataplane_id, incarnation, seq, error, line, line_sha256) VALUES ($1, $2, $3, $4, $5, sha256($5))
       ON CONFLICT (dataplane_id, line_sha256) DO NOTHING`,
      [dataplaneId, record?.incarnation ?? null, record?.seq ?? null, boundText(error, 2000), Buffer.from(line, 'utf8')],
    );
  }

  async recordGap(dataplaneId: string, incarnation: string, fromSeq: number, toSeq: number): Promise<void> {
    this.logger.error({ dataplane_id: dataplaneId, incarnation, from_seq: fromSeq, to_seq: toSeq }, 'audit records missing from a data plane sequence');
    await this.pool.query('INSERT INTO audit_gaps (dataplane_id, incarnation, from_seq, to_seq) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING', [dataplaneId, incarnation, fromSeq, toSeq]);
  }

  async query(filter: AuditFilter): Promise<{ rows: AuditRow[]; nextCursor: string }> {
    const where: string[] = [];
    const values: unknown[] = [];
    const bind = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replace('?', `$${values.length}`));
    };
    if (filter.idempotencyKey) bind('idempotency_key = ?', filter.idempotencyKey);
    if (filter.label) bind('label = ?', filter.label);
    if (filter.keyId) bind('key_id = ?', filter.keyId);
    if (filter.vendor) bind('vendor = ?', filter.vendor);
    if (filter.vendorObjectId) bind('vendor_object_id = ?', filter.vendorObjectId);
    if (filter.decision) bind('decision = ?', filter.decision);
    if (filter.sinceMs !== undefined) bind('ts >= ?', new Date(filter.sinceMs));
    if (filter.untilMs !== undefined) bind('ts < ?', new Date(filter.untilMs));
    if (filter.cursor) {
      const [tsMicros, dataplaneId, incarnation, seq] = decodeCursor(filter.cursor);
      values.push(tsMicros, dataplaneId, incarnation, seq);
      const n = values.length;
      // Microseconds, exactly as stored: a cursor in milliseconds (a JS Date) would skip the
      // rows of its last millisecond that sort after it.
      where.push(`(ts, dataplane_id, incarnation, seq) < ('epoch'::timestamptz + $${n - 3}::bigint * interval '1 microsecond', $${n - 2}, $${n - 1}, $${n})`);
    }
    values.push(filter.limit + 1);
    const sql = `SELECT *, (EXTRACT(EPOCH FROM ts) * 1000000)::bigint::text AS ts_micros FROM audit_records ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
      ORDER BY ts DESC, dataplane_id DESC, incarnation DESC, seq DESC LIMIT $${values.length}`;
    const result = await this.pool.query<Record<string, unknown>>(sql, values);
    const rows = result.rows.slice(0, filter.limit);
    const last = rows.at(-1);
    return {
      rows: rows.map(toRow),
      nextCursor: result.rows.length > filter.limit && last !== undefined ? encodeCursor(last) : '',
    };
  }

  /** Creates the day partitions around today and drops those past retention. Safe to run on every replica. */
  async maintainPartitions(nowMs: number, retentionDays: number): Promise<void> {
    const today = Math.floor(nowMs / DAY_MS) * DAY_MS;
    for (let day = today - DAY_MS; day <= today + 2 * DAY_MS; day += DAY_MS) {
      const name = partitionName(day);
      try {
        await this.pool.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF audit_records FOR VALUES FROM ('${isoDay(day)}') TO ('${isoDay(day + DAY_MS)}')`);
      } catch (error) {
        // Rows for that day already sit in the default partition: they stay there.
        this.logger.warn({ partition: name, err: error instanceof Error ? error.message : String(error) }, 'could not create an audit partition');
      }
    }
    const oldest = partitionName(today - retentionDays * DAY_MS);
    const children = await this.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
       WHERE p.relname = 'audit_records' AND c.relname ~ '^audit_records_[0-9]{8}$'`,
    );
    for (const { name } of children.rows) {
      if (name < oldest) await this.pool.query(`DROP TABLE IF EXISTS ${name}`);
    }
  }
}

function toRow(row: Record<string, unknown>): AuditRow {
  const text = (column: string) => (row[column] === null || row[column] === undefined ? '' : String(row[column]));
  const ts = row['ts'] as Date;
  return {
    id: `${text('dataplane_id')}:${text('incarnation')}:${text('seq')}`,
    ts,
    keyId: text('key_id'),
    label: text('label'),
    vendor: text('vendor'),
    method: text('method'),
    path: text('path'),
    status: Number(row['status']),
    decision: text('decision'),
    reason: text('reason'),
    amount: row['amount'] === null ? null : Number(row['amount']),
    currency: text('currency'),
    estimatedUsdMicros: Number(row['estimated_usd_micros']),
    usdMicros: Number(row['usd_micros']),
    idempotencyKey: text('idempotency_key'),
    vendorRequestId: text('vendor_request_id'),
    vendorObjectId: text('vendor_object_id'),
    stripeChargeId: text('stripe_charge_id'),
    dataplaneId: text('dataplane_id'),
    latencyMs: Number(row['latency_ms']),
    replayed: row['replayed'] === true,
    callCount: Number(row['call_count'] ?? 1),
    flag: text('flag'),
  };
}

function encodeCursor(row: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify([String(row['ts_micros']), row['dataplane_id'], row['incarnation'], Number(row['seq'])])).toString('base64url');
}

/** [ts in microseconds since the epoch (decimal text), data plane, incarnation, seq]. */
function decodeCursor(cursor: string): [string, string, string, number] {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 4 && typeof value[1] === 'string' && typeof value[2] === 'string' && typeof value[3] === 'number') {
      // Cursors handed out before microseconds were milliseconds (a number).
      if (typeof value[0] === 'number' && Number.isSafeInteger(value[0])) return [String(value[0] * 1000), value[1], value[2], value[3]];
      if (typeof value[0] === 'string' && /^-?\d{1,19}$/.test(value[0])) return [value[0], value[1], value[2], value[3]];
    }
  } catch {
    // fall through
  }
  throw invalidField('cursor', 'is not a cursor this API returned');
}

function partitionName(dayMs: number): string {
  return `audit_records_${isoDay(dayMs).replaceAll('-', '')}`;
}

function isoDay(dayMs: number): string {
  return new Date(dayMs).toISOString().slice(0, 10);
}
