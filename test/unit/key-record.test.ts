import { describe, expect, it } from 'vitest';

import { decodeKeyRecord, encodeKeyRecord, newKeyId, type KeyRecord } from '../../control-plane/key-record.js';

const record: KeyRecord = {
  id: 'vk_0000000AAAAAAAAAAAAA', keyHash: 'a'.repeat(64), vendor: 'stripe', label: 'metaflow/InvoiceFlow/1234/branch-17', allowedEndpoints: ['POST /v1/payment_intents'],
  dailyCapMicros: 10_990_000, budgetMicros: 0, perCallEstimateMicros: 0, createdAtMs: 1_764_000_000_000, expiresAtMs: 1_764_086_400_000, revokedAtMs: null,
};

describe('the stored key record', () => {
  it('round-trips, without the id (the etcd key names it) and without zero fields', () => {
    const text = encodeKeyRecord(record);
    expect(decodeKeyRecord(text, record.id)).toEqual(record);
    expect(text).not.toContain(record.id);
    expect(text).not.toMatch(/"b"|"p"|"r"/);
    const revoked = { ...record, budgetMicros: 5, perCallEstimateMicros: 7, revokedAtMs: 1_764_000_000_001, label: '' };
    expect(decodeKeyRecord(encodeKeyRecord(revoked), record.id)).toEqual(revoked);
  });

  it('is much shorter than the full JSON it replaced, and still reads records written in that form', () => {
    const full = JSON.stringify(record);
    expect(encodeKeyRecord(record).length).toBeLessThan(full.length * 0.75);
    expect(decodeKeyRecord(full, record.id)).toEqual(record);
  });

  it('makes ids that sort newest first', () => {
    const ids = [1_700_000_000_000, 1_764_000_000_000, 1_764_000_000_001, 2_000_000_000_000].map(newKeyId);
    expect([...ids].sort()).toEqual([...ids].reverse());
    for (const id of ids) expect(id).toMatch(/^vk_[0-9A-Za-z]{20}$/);
  });
});
