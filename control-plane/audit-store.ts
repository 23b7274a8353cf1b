/**
 * The audit trail in PostgreSQL: idempotent batched inserts keyed by (data plane, incarnation,
 * sequence), newest-first queries with a cursor, day partitions created ahead and dropped
 * after the retention period.
 */
import type pg from 'pg';

import type { Logger } from '../core/logger.js';
import { invalidField } from '../core/operator-error.js';
import type { AuditRecord } from '../gen/keybrake/v1/dataplane.js';

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
}

const COLUMNS = [
  'ts', 'dataplane_id', 'incarnation', 'seq', 'key_id', 'label', 'vendor', 'method', 'path', 'status', 'decision', 'reason', 'amount', 'currency',
  'estimated_usd_micros', 'usd_micros', 'idempotency_key', 'vendor_request_id', 'vendor_object_id', 'stripe_charge_id', 'replayed', 'latency_ms',
] as const;

/** The PostgreSQL type of each column, in COLUMNS order. */
const COLUMN_TYPES = [
  'timestamptz', 'text', 'text', 'bigint', 'text', 'text', 'text', 'text', 'text', 'integer', 'text', 'text', 'bigint', 'text',
  'bigint', 'bigint', 'text', 'text', 'text', 'text', 'boolean', 'integer',
] as const;

/**
 * The JSON path of `insert`: $1 the data plane, $2 a JSON array of spooled records (their
 * AuditRecord field names). Empty texts become NULL and a negative amount "none", as in the
 * unnest path. PostgreSQL's json functions take the last of duplicate keys, as JSON.parse does in
 * readAuditBatch (json, not jsonb: cheaper to read once).
 */
const INSERT_JSON_SQL = `INSERT INTO audit_records (${COLUMNS.join(',')})
  SELECT 'epoch'::timestamptz + r."tsUnixMs" * interval '1 millisecond', $1, r.incarnation, r.seq, nullif(r."keyId", ''), nullif(r.label, ''),
    r.vendor, r.method, r.path, r.status, r.decision, nullif(r.reason, ''), CASE WHEN r.amount < 0 THEN NULL ELSE r.amount END, nullif(r.currency, ''),
    r."estimatedUsdMicros", r."usdMicros", nullif(r."idempotencyKey", ''), nullif(r."vendorRequestId", ''), nullif(r."vendorObjectId", ''),
    nullif(r."stripeChargeId", ''), r.replayed, r."latencyMs"
  FROM json_to_recordset($2::json) AS r(
    "tsUnixMs" bigint, incarnation text, seq bigint, "keyId" text, label text, vendor text, method text, path text, status integer, decision text, reason text,
    amount bigint, currency text, "estimatedUsdMicros" bigint, "usdMicros" bigint, "idempotencyKey" text, "vendorRequestId" text, "vendorObjectId" text,
    "stripeChargeId" text, replayed boolean, "latencyMs" integer)
  ON CONFLICT DO NOTHING`;

const DAY_MS = 86_400_000;

export class AuditStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  /**
   * Inserts a batch in one statement; records already stored are ignored. A batch that
   * readAuditBatch found well formed goes as its own JSON lines (`jsonRows`): PostgreSQL maps
   * them to columns, the control plane builds nothing per record. Otherwise one array parameter
   * per column (unnest), from the sanitised records. Either way the statement is the same
   * whatever the batch size: PostgreSQL parses a few parameters instead of 22 per row. Should
   * PostgreSQL still refuse a JSON batch's data, it goes again the sanitised way.
   */
  async insert(dataplaneId: string, records: readonly AuditRecord[], jsonRows: string | null = null): Promise<void> {
    if (records.length === 0) return;
    if (jsonRows !== null) {
      try {
        await this.pool.query({ name: 'keybrake-audit-insert-json', text: INSERT_JSON_SQL, values: [dataplaneId, jsonRows] });
        return;
      } catch (error) {
        // Class 22 is "data exception": a value the checks let through. Anything else (a lost connection) is the caller's.
        if (!String((error as { code?: unknown }).code ?? '').startsWith('22')) throw error;
        this.logger.warn({ err: error instanceof Error ? error.message : String(error), dataplane_id: dataplaneId }, 'PostgreSQL refused an audit batch as JSON; storing it field by field');
      }
    }
    const columns: unknown[][] = COLUMNS.map(() => []);
    for (const r of records) {
      const row = [
        new Date(r.tsUnixMs), dataplaneId, r.incarnation, r.seq, orNull(r.keyId), orNull(r.label), clean(r.vendor), clean(r.method), clean(r.path), r.status, r.decision,
        orNull(r.reason), r.amount < 0 ? null : r.amount, orNull(r.currency), r.estimatedUsdMicros, r.usdMicros, orNull(r.idempotencyKey),
        orNull(r.vendorRequestId), orNull(r.vendorObjectId), orNull(r.stripeChargeId), r.replayed, r.latencyMs,
      ];
      row.forEach((value, i) => columns[i]!.push(value));
    }
    const arrays = COLUMN_TYPES.map((type, i) => `$${i + 1}::${type}[]`).join(', ');
    await this.pool.query({
      name: 'keybrake-audit-insert',
      text: `INSERT INTO audit_records (${COLUMNS.join(',')}) SELECT * FROM unnest(${arrays}) ON CONFLICT DO NOTHING`,
      values: columns,
    });
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

function clean(value: string): string {
  return value.replaceAll('\u0000', '');
}

/** PostgreSQL text cannot hold NUL: a vendor answer carrying one must not poison the batch. */
function orNull(value: string): string | null {
  return value === '' ? null : value.replaceAll('\u0000', '');
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
