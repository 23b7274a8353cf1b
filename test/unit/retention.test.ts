import { describe, expect, it } from 'vitest';

import { emptyAccount, type BudgetAccount } from '../../control-plane/budget-account.js';
import type { StoredAccount } from '../../control-plane/budget-ledger.js';
import type { KeyRecord } from '../../control-plane/key-record.js';
import { dayWindowEndMs, retentionPlan } from '../../control-plane/retention.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-01T12:00:00Z');
const RETENTION = 30 * DAY;

function key(id: string, expiresAtMs: number, revokedAtMs: number | null = null): KeyRecord {
  return { id, keyHash: `h-${id}`, vendor: 'stripe', label: '', allowedEndpoints: [], dailyCapMicros: 1, budgetMicros: 1, createdAtMs: 0, expiresAtMs, revokedAtMs };
}

const idle: BudgetAccount = { ...emptyAccount(100), settledMicros: 40 };
const leased: BudgetAccount = { ...idle, leases: { l1: { holder: 'dp-1', grantedMicros: 10, reportedMicros: 0, expiresAtMs: NOW + 1000, lastSeq: 1 } } };
const account = (keyId: string, window: string, value = idle): StoredAccount => ({ keyId, window, account: value });

describe('retentionPlan', () => {
  it('forgets a key and its accounts once it ended longer ago than the retention', () => {
    const plan = retentionPlan([key('old', NOW - RETENTION - 1)], [account('old', 'life'), account('old', 'day:2026-10-01')], NOW, RETENTION);
    expect(plan.keyIds).toEqual(['old']);
    expect(plan.accounts).toEqual([{ keyId: 'old', window: 'life' }, { keyId: 'old', window: 'day:2026-10-01' }]);
  });

  it('counts a revocation as the end, and keeps what ended within the retention', () => {
    const revokedLongAgo = key('revoked', NOW + DAY, NOW - RETENTION);
    const recent = key('recent', NOW - RETENTION + 1000);
    const plan = retentionPlan([revokedLongAgo, recent], [account('recent', 'life')], NOW, RETENTION);
    expect(plan.keyIds).toEqual(['revoked']);
    expect(plan.accounts).toEqual([]);
  });

  it('never takes anything a data plane may still hold a lease on, nor the key of such an account', () => {
    const plan = retentionPlan([key('old', NOW - RETENTION - 1)], [account('old', 'life', leased), account('old', 'day:2026-10-01')], NOW, RETENTION);
    expect(plan.keyIds).toEqual([]);
    // The key stays, so its lifetime account would too; an idle old day may go.
    expect(plan.accounts).toEqual([{ keyId: 'old', window: 'day:2026-10-01' }]);
  });

  it('keeps a live key, its lifetime account and its recent days; drops its days past retention', () => {
    const live = key('live', NOW + 60 * DAY);
    const plan = retentionPlan([live], [account('live', 'life'), account('live', 'day:2026-11-30'), account('live', 'day:2026-10-31'), account('live', 'day:2026-10-30')], NOW, RETENTION);
    expect(plan.keyIds).toEqual([]);
    // 2026-10-31 ended at 2026-11-01T00:00Z: 30.5 days ago.
    expect(plan.accounts).toEqual([{ keyId: 'live', window: 'day:2026-10-31' }, { keyId: 'live', window: 'day:2026-10-30' }]);
  });

  it('takes idle accounts of a key that no longer exists (deleted by an admin)', () => {
    const plan = retentionPlan([], [account('deleted', 'life'), account('deleted', 'day:2026-12-01', leased)], NOW, RETENTION);
    expect(plan.accounts).toEqual([{ keyId: 'deleted', window: 'life' }]);
  });
});

describe('dayWindowEndMs', () => {
  it('reads day windows only', () => {
    expect(dayWindowEndMs('day:2026-12-01')).toBe(Date.parse('2026-12-02T00:00:00Z'));
    expect(dayWindowEndMs('life')).toBeNull();
    expect(dayWindowEndMs('day:2026-13-45')).toBeNull();
  });
});
