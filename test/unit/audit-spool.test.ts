import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { AuditShipper } from '../../data-plane/audit-shipper.js';
import { AuditSpool } from '../../data-plane/audit-spool.js';
import { problemsOf, readAuditBatch } from '../../control-plane/audit-batch.js';
import { AUDIT_TEXT_LIMITS } from '../../core/audit-record-bounds.js';
import type { AuditRecord, ConnectRequest } from '../../gen/keybrake/v1/dataplane.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'spool-test-'));
  dirs.push(dir);
  return dir;
}

/** A record as the proxy drafts it: the spool fills in seq and incarnation. */
const draft = (i: number): AuditRecord => ({
  seq: 0, incarnation: '', tsUnixMs: 1_800_000_000_000 + i, keyId: 'vk_x', label: 'l', vendor: 'stripe', method: 'POST', path: '/v1/charges', status: 200, decision: 'allowed', reason: '',
  amount: i, currency: 'usd', estimatedUsdMicros: i, usdMicros: i, idempotencyKey: '', vendorRequestId: `req_${i}`, vendorObjectId: '', stripeChargeId: '', replayed: false, latencyMs: 1,
  callCount: 0,
});

describe('AuditSpool', () => {
  it('numbers records without gaps and replays what was not acknowledged after a crash', () => {
    const dir = tempDir();
    const first = AuditSpool.open({ dir, incarnation: 'aaaa', maxBytes: 1 << 20 });
    for (let i = 1; i <= 5; i++) expect(first.append(draft(i)).seq).toBe(i);
    first.flush();
    first.ack('aaaa', 2);
    // kill -9: no close; a half-written line at the end is what a crash mid-write leaves.
    const [segment] = readdirSync(dir);
    appendFileSync(join(dir, segment!), '{"seq":6,"incarn');

    const second = AuditSpool.open({ dir, incarnation: 'bbbb', maxBytes: 1 << 20 });
    const replayed = second.unacked(0, 100);
    expect(replayed.map((r) => [r.incarnation, r.seq])).toEqual([['aaaa', 1], ['aaaa', 2], ['aaaa', 3], ['aaaa', 4], ['aaaa', 5]]);
    expect(second.append(draft(9))).toMatchObject({ incarnation: 'bbbb', seq: 1 });
    second.ack('aaaa', 5);
    expect(second.unacked(0, 100).map((r) => r.incarnation)).toEqual(['bbbb']);
    expect(readdirSync(dir).every((name) => name.startsWith('bbbb.'))).toBe(true);
  });

  it('deletes a segment once all of it is acknowledged, and says when it is full', () => {
    const dir = tempDir();
    const spool = AuditSpool.open({ dir, incarnation: 'cccc', maxBytes: 2000, segmentBytes: 1000 });
    for (let i = 1; i <= 6; i++) spool.append(draft(i));
    expect(spool.isFull()).toBe(true);
    expect(readdirSync(dir).length).toBeGreaterThan(1);
    spool.ack('cccc', 6);
    expect(spool.isFull()).toBe(false);
    expect(spool.pendingCount).toBe(0);
    expect(readdirSync(dir).length).toBe(1); // the active segment stays open
  });
});

/** What the control plane reads out of a shipped batch. */
const seqsOf = (message: ConnectRequest) => readAuditBatch(message.auditBatch!).records.map((r) => r.record.seq);

describe('AuditShipper', () => {
  it('keeps a bounded window in flight and resends everything unacknowledged after a reconnect', () => {
    const spool = AuditSpool.open({ dir: tempDir(), incarnation: 'dddd', maxBytes: 1 << 20 });
    const sent: ConnectRequest[] = [];
    let up = true;
    const shipper = new AuditShipper({ spool, send: (m) => (up ? (sent.push(...m), true) : false), batchSize: 2, maxBatchesInFlight: 2 });
    for (let i = 1; i <= 7; i++) spool.append(draft(i));
    shipper.pump();
    expect(sent.map(seqsOf)).toEqual([[1, 2], [3, 4]]);
    shipper.onAck({ incarnation: 'dddd', upToSeq: 2 });
    expect(seqsOf(sent.at(-1)!)).toEqual([5, 6]);
    up = false;
    shipper.onAck({ incarnation: 'dddd', upToSeq: 4 });
    up = true;
    sent.length = 0;
    shipper.onReconnect();
    expect(sent.map(seqsOf)).toEqual([[5, 6], [7]]);
  });
});

describe('group commit', () => {
  it('writes the lines appended in one turn of the event loop together, before the answers go out', async () => {
    const dir = tempDir();
    const spool = AuditSpool.open({ dir, incarnation: 'ffff', maxBytes: 1 << 20 });
    const onDisk = () => readdirSync(dir).map((name) => readFileSync(join(dir, name), 'utf8')).join('').split('\n').filter((l) => l !== '').length;
    const seenAtAnswer: number[] = [];
    for (let i = 1; i <= 3; i++) {
      spool.append(draft(i));
      spool.afterWrite((error) => {
        expect(error).toBeNull();
        seenAtAnswer.push(onDisk());
      });
    }
    expect(onDisk()).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(seenAtAnswer).toEqual([3, 3, 3]);
    spool.append(draft(4));
    spool.close();
    expect(onDisk()).toBe(4);
  });
});

describe('AuditSpool bounds every record where it is made', () => {
  it('cuts caller and vendor text to its limit and replaces what PostgreSQL cannot store', () => {
    const spool = AuditSpool.open({ dir: tempDir(), incarnation: 'eeee', maxBytes: 1 << 20 });
    const record = spool.append({ ...draft(1), idempotencyKey: 'k'.repeat(3000), label: 'a\u0000b', vendorObjectId: 'ch_\ud800', vendorRequestId: 'r\n'.repeat(500) });
    expect(record.idempotencyKey).toHaveLength(AUDIT_TEXT_LIMITS.idempotencyKey);
    expect(record.idempotencyKey.endsWith('…')).toBe(true);
    expect(record.label).toBe('a\ufffdb');
    expect(record.vendorObjectId).toBe('ch_\ufffd');
    expect(record.vendorRequestId.length).toBeLessThanOrEqual(AUDIT_TEXT_LIMITS.vendorRequestId);
    // What the control plane then finds: nothing to change.
    expect(problemsOf(JSON.parse(spool.unacked(0, 1)[0]!.line) as Record<string, unknown>)).toEqual([]);
  });

  it('leaves an ordinary record exactly as drafted', () => {
    const spool = AuditSpool.open({ dir: tempDir(), incarnation: 'eeef', maxBytes: 1 << 20 });
    const record = spool.append({ ...draft(2), label: 'metaflow/équipe 🚀', idempotencyKey: 'x'.repeat(255) });
    expect(record).toEqual({ ...draft(2), label: 'metaflow/équipe 🚀', idempotencyKey: 'x'.repeat(255), seq: 1, incarnation: 'eeef' });
  });
});

describe('readAuditBatch', () => {
  const spooled = (label = 'ok') => {
    const spool = AuditSpool.open({ dir: tempDir(), incarnation: 'ffff', maxBytes: 1 << 20 });
    const written = [1, 2, 3].map((i) => spool.append({ ...draft(i), label: i === 2 ? label : `l${i}` }));
    return { written, jsonl: Buffer.from(spool.unacked(0, 10).map((r) => r.line).join('')) };
  };

  it('hands well-formed spooled lines to PostgreSQL exactly as they came, unflagged', () => {
    const { written, jsonl } = spooled('équipe "quoted" \\ back');
    const read = readAuditBatch({ records: [], jsonl });
    expect(read.records.map((r) => r.record)).toEqual(written);
    expect(read.records.map((r) => r.flag)).toEqual(['', '', '']);
    expect(read.records.map((r) => r.json)).toEqual(jsonl.toString('utf8').trimEnd().split('\n'));
    expect(read.unreadable).toEqual([]);
  });

  it.each([
    ['a NUL in a text', (r: Record<string, unknown>) => ({ ...r, label: 'a\u0000b' }), 'label'],
    ['a lone surrogate', (r: Record<string, unknown>) => ({ ...r, vendorObjectId: 'ch_\ud800' }), 'vendorObjectId'],
    ['an over-long idempotency key', (r: Record<string, unknown>) => ({ ...r, idempotencyKey: 'k'.repeat(3000) }), 'idempotencyKey'],
    ['a missing field', ({ latencyMs: _dropped, ...r }: Record<string, unknown>) => r, 'latencyMs'],
    ['a number as text', (r: Record<string, unknown>) => ({ ...r, amount: '2' }), 'amount'],
    ['a fraction', (r: Record<string, unknown>) => ({ ...r, amount: 1.5 }), 'amount'],
    ['an integer column out of range', (r: Record<string, unknown>) => ({ ...r, status: 2 ** 31 }), 'status'],
    ['a bigint beyond safe integers', (r: Record<string, unknown>) => ({ ...r, usdMicros: 2 ** 53 }), 'usdMicros'],
    ['a boolean as text', (r: Record<string, unknown>) => ({ ...r, replayed: 'false' }), 'replayed'],
    ['a time PostgreSQL cannot hold', (r: Record<string, unknown>) => ({ ...r, tsUnixMs: 9e15 }), 'tsUnixMs'],
    ['a decision that is neither', (r: Record<string, unknown>) => ({ ...r, decision: 'maybe' }), 'decision'],
  ])('stores a record with %s made storable and flagged, and the others as they came', (_name, spoil, field) => {
    const { jsonl } = spooled();
    const lines = jsonl.toString('utf8').trimEnd().split('\n');
    lines[1] = JSON.stringify(spoil(JSON.parse(lines[1]!) as Record<string, unknown>));
    const read = readAuditBatch({ records: [], jsonl: Buffer.from(`${lines.join('\n')}\n`) });
    expect(read.records.map((r) => r.record.seq)).toEqual([1, 2, 3]);
    expect(read.records[0]!.flag).toBe('');
    expect(read.records[2]!.flag).toBe('');
    expect(read.records[1]!.flag).toContain(field);
    expect(problemsOf(read.records[1]!.record as unknown as Record<string, unknown>)).toEqual([]);
    expect(JSON.parse(read.records[1]!.json)).toMatchObject({ seq: 2, flag: read.records[1]!.flag });
  });

  it('keeps a line that is not a record aside and reads the rest', () => {
    const { jsonl } = spooled();
    const read = readAuditBatch({ records: [], jsonl: Buffer.concat([Buffer.from('{"seq":\n{"no":"identity"}\n'), jsonl]) });
    expect(read.records.map((r) => r.record.seq)).toEqual([1, 2, 3]);
    expect(read.unreadable.map((u) => u.error)).toEqual(['not JSON', 'not an audit record (no incarnation and seq)']);
  });

  it('reads encoded records like lines', () => {
    const { written } = spooled();
    const read = readAuditBatch({ records: [written[0]!, { ...written[1]!, label: 'x'.repeat(500) }], jsonl: Buffer.alloc(0) });
    expect(read.records.map((r) => r.flag === '')).toEqual([true, false]);
    expect(read.records[1]!.record.label).toHaveLength(AUDIT_TEXT_LIMITS.label);
  });
});
