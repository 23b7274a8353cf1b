import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { AuditShipper } from '../../data-plane/audit-shipper.js';
import { AuditSpool } from '../../data-plane/audit-spool.js';
import { auditBatchRecords, readAuditBatch } from '../../control-plane/audit-batch.js';
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
const seqsOf = (message: ConnectRequest) => auditBatchRecords(message.auditBatch!).map((r) => r.seq);

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

describe('auditBatchRecords', () => {
  it('reads spooled lines back into the records that were spooled, after any encoded ones', () => {
    const spool = AuditSpool.open({ dir: tempDir(), incarnation: 'eeee', maxBytes: 1 << 20 });
    const written = [1, 2, 3].map((i) => spool.append({ ...draft(i), label: `l\u0000"${i}\n` }));
    const jsonl = Buffer.from(spool.unacked(0, 10).map((r) => r.line).join(''));
    const encoded = { ...written[0]!, seq: 99 };
    expect(auditBatchRecords({ records: [encoded], jsonl })).toEqual([encoded, ...written]);
  });

  it('turns a field of the wrong type into its zero value', () => {
    const [record] = auditBatchRecords({ records: [], jsonl: Buffer.from('{"seq":"7","incarnation":"i","status":{"x":1},"label":42}\n') });
    expect(record).toMatchObject({ seq: 7, incarnation: 'i', label: '42', status: 0 });
  });
});

describe('readAuditBatch', () => {
  const spooled = (label = 'ok') => {
    const spool = AuditSpool.open({ dir: tempDir(), incarnation: 'ffff', maxBytes: 1 << 20 });
    const written = [1, 2, 3].map((i) => spool.append({ ...draft(i), label: i === 2 ? label : `l${i}` }));
    return { written, jsonl: Buffer.from(spool.unacked(0, 10).map((r) => r.line).join('')) };
  };

  it('hands well-formed spooled lines to PostgreSQL as one JSON array, with the records', () => {
    const { written, jsonl } = spooled('équipe "quoted" \\ back');
    const read = readAuditBatch({ records: [], jsonl });
    expect(read.records).toEqual(written);
    expect(JSON.parse(read.jsonRows!)).toEqual(written);
  });

  it.each([
    ['a NUL in a text', (r: Record<string, unknown>) => ({ ...r, label: 'a\u0000b' })],
    ['a lone surrogate', (r: Record<string, unknown>) => ({ ...r, vendorObjectId: 'ch_\ud800' })],
    ['a missing field', ({ latencyMs: _dropped, ...r }: Record<string, unknown>) => r],
    ['a number as text', (r: Record<string, unknown>) => ({ ...r, seq: '2' })],
    ['a fraction', (r: Record<string, unknown>) => ({ ...r, amount: 1.5 })],
    ['an integer column out of range', (r: Record<string, unknown>) => ({ ...r, status: 2 ** 31 })],
    ['a bigint beyond safe integers', (r: Record<string, unknown>) => ({ ...r, usdMicros: 2 ** 53 })],
    ['a boolean as text', (r: Record<string, unknown>) => ({ ...r, replayed: 'false' })],
  ])('reads the whole batch field by field when one line has %s', (_name, spoil) => {
    const { jsonl } = spooled();
    const lines = jsonl.toString('utf8').trimEnd().split('\n');
    lines[1] = JSON.stringify(spoil(JSON.parse(lines[1]!) as Record<string, unknown>));
    const batch = { records: [], jsonl: Buffer.from(`${lines.join('\n')}\n`) };
    const read = readAuditBatch(batch);
    expect(read.jsonRows).toBeNull();
    expect(read.records).toEqual(auditBatchRecords(batch));
  });

  it('fails on a line that is not JSON (nothing of the batch is stored); reads encoded records field by field', () => {
    const { jsonl } = spooled();
    expect(() => readAuditBatch({ records: [], jsonl: Buffer.concat([jsonl, Buffer.from('{"seq":\n')]) })).toThrow(SyntaxError);
    const [first] = auditBatchRecords({ records: [], jsonl });
    expect(readAuditBatch({ records: [first!], jsonl }).jsonRows).toBeNull();
  });
});
