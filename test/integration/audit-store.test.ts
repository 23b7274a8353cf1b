/**
 * The audit store against a real PostgreSQL: a batch of spooled JSON lines is stored as sent,
 * edge values included; re-sending is a no-op; a record PostgreSQL refuses for a reason of its
 * own (an index row too large) cannot hold back the records beside and behind it; what cannot
 * be stored as a record at all is kept, once, in audit_quarantine.
 */
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readAuditBatch, type ReadAuditBatch } from '../../control-plane/audit-batch.js';
import { AuditStore } from '../../control-plane/audit-store.js';
import { createPool, runMigrations } from '../../control-plane/database.js';
import type { AuditRecord } from '../../gen/keybrake/v1/dataplane.js';
import { createTestStack } from '../support/control-plane.js';

let pool: pg.Pool;
let store: AuditStore;

beforeAll(async () => {
  const stack = await createTestStack();
  pool = createPool(stack.databaseUrl);
  const logger = pino({ level: 'silent' });
  await runMigrations(pool, logger);
  store = new AuditStore(pool, logger);
  await store.maintainPartitions(Date.now(), 30);
});
afterAll(async () => {
  await pool?.end();
});

const base: AuditRecord = {
  seq: 1, incarnation: 'inc1', tsUnixMs: Date.now(), keyId: 'key_1', label: 'store/test', vendor: 'stripe', method: 'POST', path: '/v1/charges',
  status: 200, decision: 'allowed', reason: '', amount: 2000, currency: 'usd', estimatedUsdMicros: 20_000_000, usdMicros: 20_000_000,
  idempotencyKey: 'idem-1', vendorRequestId: 'req_1', vendorObjectId: 'ch_1', stripeChargeId: 'ch_1', replayed: false, latencyMs: 3, callCount: 0,
};

/** Edge values: empty texts (NULL), no amount, a replay, a denial, non-ASCII text, the largest safe integers, a millisecond timestamp. */
const records: AuditRecord[] = [
  base,
  { ...base, seq: 2, keyId: '', label: '', reason: '', currency: '', idempotencyKey: '', vendorRequestId: '', vendorObjectId: '', stripeChargeId: '', amount: -1 },
  { ...base, seq: 3, replayed: true, usdMicros: 0, status: 200 },
  { ...base, seq: 4, decision: 'denied', reason: 'spend_cap_exceeded', status: 429, usdMicros: 0 },
  { ...base, seq: 5, label: 'équipe/日本語 "quoted" \\ back', path: '/v1/charges/ch_é', idempotencyKey: 'k k' },
  { ...base, seq: 6, amount: Number.MAX_SAFE_INTEGER, estimatedUsdMicros: Number.MAX_SAFE_INTEGER, usdMicros: Number.MAX_SAFE_INTEGER, latencyMs: 2 ** 31 - 1, tsUnixMs: base.tsUnixMs + 123 },
];
const jsonl = (rs: readonly AuditRecord[]) => Buffer.from(rs.map((r) => `${JSON.stringify(r)}\n`).join(''));

async function rowsOf(dataplaneId: string): Promise<Record<string, unknown>[]> {
  const result = await pool.query('SELECT * FROM audit_records WHERE dataplane_id = $1 ORDER BY seq', [dataplaneId]);
  return result.rows.map(({ dataplane_id: _ignored, ...row }: Record<string, unknown>) => row);
}

/** A batch as the control plane reads it, with `spoil` applied to the stored JSON of the records it names (bypassing the checks). */
function batchOf(rs: readonly AuditRecord[], spoil: Record<number, (json: Record<string, unknown>) => Record<string, unknown>> = {}): ReadAuditBatch {
  const read = readAuditBatch({ records: [], jsonl: jsonl(rs) });
  return {
    ...read,
    records: read.records.map((stored) => {
      const change = spoil[stored.record.seq];
      if (change === undefined) return stored;
      const json = change(JSON.parse(stored.json) as Record<string, unknown>);
      return { record: json as unknown as AuditRecord, flag: '', json: JSON.stringify(json) };
    }),
  };
}

/** Text PostgreSQL cannot compress below a btree index row's 2,704 bytes. */
const incompressible = (length: number) => Array.from({ length }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20000))).join('');

describe('audit store', () => {
  it('stores a well-formed batch as the data plane sent it', async () => {
    await store.insert('dp-json', batchOf(records));
    const rows = await rowsOf('dp-json');
    expect(rows).toHaveLength(records.length);
    expect(rows[0]).toMatchObject({ key_id: 'key_1', label: 'store/test', idempotency_key: 'idem-1', amount: '2000', call_count: 1, flag: null });
    expect(rows[1]).toMatchObject({ key_id: null, label: null, reason: null, currency: null, idempotency_key: null, amount: null });
    expect(rows[4]).toMatchObject({ label: 'équipe/日本語 "quoted" \\ back', path: '/v1/charges/ch_é', idempotency_key: 'k k' });
    expect((rows[5]!['ts'] as Date).getTime()).toBe(base.tsUnixMs + 123);
    expect(rows[5]!['amount']).toBe(String(Number.MAX_SAFE_INTEGER));
  });

  it('ignores records it already has', async () => {
    const outcome = await store.insert('dp-json', batchOf(records));
    expect(outcome).toEqual({ flagged: 0, quarantined: 0 });
    expect(await rowsOf('dp-json')).toHaveLength(records.length);
  });

  it('stores the rest of a batch when PostgreSQL refuses one record, and that one flagged without its text', async () => {
    // What a data plane before the bounds could send: an idempotency key whose index row PostgreSQL refuses (SQLSTATE 54000).
    const batch = batchOf(records, { 3: (json) => ({ ...json, idempotencyKey: incompressible(3000) }) });
    expect(await store.insert('dp-poisoned', batch)).toEqual({ flagged: 1, quarantined: 0 });
    const rows = await rowsOf('dp-poisoned');
    expect(rows.map((r) => r['seq'])).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(rows[2]).toMatchObject({ idempotency_key: null, label: null, key_id: 'key_1', usd_micros: '0', replayed: true });
    expect(rows[2]!['flag']).toMatch(/^stored without its text fields: PostgreSQL refused the record \(index row/);
    expect(rows.filter((r) => r['flag'] !== null)).toHaveLength(1);
    // And what comes after it is stored as usual.
    await store.insert('dp-poisoned', batchOf([{ ...base, seq: 7 }]));
    expect(await rowsOf('dp-poisoned')).toHaveLength(7);
  });

  it('keeps what cannot be stored as a record at all in audit_quarantine, once', async () => {
    const batch = batchOf(records.slice(0, 2), { 2: (json) => ({ ...json, status: 'two hundred' }) });
    const withLine = { ...batch, unreadable: [{ line: '{"seq":', error: 'not JSON' }] };
    expect(await store.insert('dp-quarantine', withLine)).toEqual({ flagged: 0, quarantined: 2 });
    expect(await store.insert('dp-quarantine', withLine)).toEqual({ flagged: 0, quarantined: 2 });
    expect((await rowsOf('dp-quarantine')).map((r) => r['seq'])).toEqual(['1']);
    const kept = await pool.query('SELECT incarnation, seq, error, convert_from(line, \'UTF8\') AS line FROM audit_quarantine WHERE dataplane_id = $1 ORDER BY id', ['dp-quarantine']);
    expect(kept.rows).toHaveLength(2);
    expect(kept.rows[0]).toMatchObject({ incarnation: 'inc1', seq: '2' });
    expect(kept.rows[0].error).toMatch(/invalid input syntax for type integer/);
    expect(kept.rows[1]).toMatchObject({ incarnation: null, seq: null, error: 'not JSON', line: '{"seq":' });
  });
});
