import { describe, expect, it } from 'vitest';

import { emptyAccount, type BudgetAccount } from '../../control-plane/budget-account.js';
import { MemoryBudgetLedger, type StoredAccount, type VersionedAccount } from '../../control-plane/budget-ledger.js';
import type { KeyRecord } from '../../control-plane/key-record.js';
import { accountsToRemove, dayWindowEndMs, keysToForget, keysToLookUp } from '../../control-plane/retention.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-01T12:00:00Z');
const RETENTION = 30 * DAY;

function key(id: string, expiresAtMs: number, revokedAtMs: number | null = null): KeyRecord {
  return { id, keyHash: `h-${id}`, vendor: 'stripe', label: '', allowedEndpoints: [], dailyCapMicros: 1, budgetMicros: 1, createdAtMs: 0, expiresAtMs, revokedAtMs };
}

const idle: BudgetAccount = { ...emptyAccount(100), settledMicros: 40 };
const leased: BudgetAccount = { ...idle, leases: { l1: { holder: 'dp-1', grantedMicros: 10, reportedMicros: 0, expiresAtMs: NOW + 1000, lastSeq: 1 } } };
const account = (keyId: string, window: string, value = idle): StoredAccount => ({ keyId, window, account: value });
const windows = (accounts: readonly StoredAccount[]) => accounts.map(({ keyId, window }) => ({ keyId, window }));

describe('keysToForget (a page of keys)', () => {
  it('forgets a key and its accounts once it ended longer ago than the retention', () => {
    const plan = keysToForget([key('old', NOW - RETENTION - 1)], new Map([['old', [account('old', 'life'), account('old', 'day:2026-10-01')]]]), NOW, RETENTION);
    expect(plan.keyIds).toEqual(['old']);
    expect(windows(plan.accounts)).toEqual([{ keyId: 'old', window: 'life' }, { keyId: 'old', window: 'day:2026-10-01' }]);
  });

  it('counts a revocation as the end, and keeps what ended within the retention', () => {
    const revokedLongAgo = key('revoked', NOW + DAY, NOW - RETENTION);
    const recent = key('recent', NOW - RETENTION + 1000);
    const plan = keysToForget([revokedLongAgo, recent], new Map([['revoked', []], ['recent', [account('recent', 'life')]]]), NOW, RETENTION);
    expect(plan.keyIds).toEqual(['revoked']);
    expect(plan.accounts).toEqual([]);
  });

  it('never takes a key while any of its accounts holds a lease, nor its accounts', () => {
    const plan = keysToForget([key('old', NOW - RETENTION - 1)], new Map([['old', [account('old', 'life', leased), account('old', 'day:2026-10-01')]]]), NOW, RETENTION);
    expect(plan).toEqual({ keyIds: [], accounts: [] });
  });

  it('keeps a key whose accounts were not read whole (or not read)', () => {
    const old = key('old', NOW - RETENTION - 1);
    expect(keysToForget([old], new Map([['old', null]]), NOW, RETENTION).keyIds).toEqual([]);
    expect(keysToForget([old], new Map(), NOW, RETENTION).keyIds).toEqual([]);
  });

  it('keeps a live key', () => {
    expect(keysToForget([key('live', NOW + 60 * DAY)], new Map([['live', []]]), NOW, RETENTION).keyIds).toEqual([]);
  });
});

describe('accountsToRemove (a page of accounts)', () => {
  it("drops a live key's idle days past retention; keeps its lifetime account, recent days and leased days", () => {
    const page = [account('live', 'day:2026-10-30'), account('live', 'day:2026-10-31'), account('live', 'day:2026-10-29', leased), account('live', 'day:2026-11-30'), account('live', 'life')];
    // 2026-10-31 ended at 2026-11-01T00:00Z: 30.5 days ago.
    expect(windows(accountsToRemove(page, new Set(['live']), NOW, RETENTION))).toEqual([
      { keyId: 'live', window: 'day:2026-10-30' },
      { keyId: 'live', window: 'day:2026-10-31' },
    ]);
  });

  it('takes idle accounts of a key that no longer exists (deleted by an admin), never a leased one', () => {
    const page = [account('deleted', 'life'), account('deleted', 'day:2026-12-01', leased)];
    expect(windows(accountsToRemove(page, new Set(), NOW, RETENTION))).toEqual([{ keyId: 'deleted', window: 'life' }]);
  });

  it('leaves the accounts of an existing key past retention to its key', () => {
    expect(accountsToRemove([account('old', 'life')], new Set(['old']), NOW, RETENTION)).toEqual([]);
  });

  it('looks up only the keys of idle accounts, once each', () => {
    expect(keysToLookUp([account('a', 'life'), account('a', 'day:2026-12-01'), account('b', 'life', leased), account('c', 'life')])).toEqual(['a', 'c']);
  });
});

describe('MemoryBudgetLedger.removeIdle', () => {
  it('removes an account at the revision it was read at, and one changed since only while it holds no lease', async () => {
    const ledger = new MemoryBudgetLedger({ pageSize: 2 });
    for (const id of ['a', 'b', 'c']) await ledger.update(id, 'life', () => emptyAccount(100), (x) => ({ ...x, settledMicros: 1 }));
    const pages: VersionedAccount[][] = [];
    await ledger.walkAccounts((page) => void pages.push([...page]));
    expect(pages.map((p) => p.map((a) => a.keyId))).toEqual([['a', 'b'], ['c']]);
    const read = pages.flat();
    // b gains a lease after the walk read it.
    await ledger.update('b', 'life', () => emptyAccount(100), (x) => ({ ...x, leases: leased.leases }));
    expect(await ledger.removeIdle(read)).toBe(2);
    expect(await ledger.read('b', 'life')).not.toBeNull();
    expect(await ledger.read('a', 'life')).toBeNull();
  });
});

describe('dayWindowEndMs', () => {
  it('reads day windows only', () => {
    expect(dayWindowEndMs('day:2026-12-01')).toBe(Date.parse('2026-12-02T00:00:00Z'));
    expect(dayWindowEndMs('life')).toBeNull();
    expect(dayWindowEndMs('day:2026-13-45')).toBeNull();
  });
});
