/**
 * What etcd may forget. A vault key's record and its budget accounts are kept for a retention
 * period after the key expired or was revoked (GetKey and the dashboard show them meanwhile),
 * then deleted; the audit trail in PostgreSQL keeps the history. A daily account is kept for the
 * retention period after its day ended, even for a key that is still live. Nothing that a data
 * plane may still hold a lease on is ever collected, and a lifetime account goes only with its
 * key. Pure, and a page at a time: the janitor walks keys and accounts in pages and does the I/O.
 */
import type { BudgetAccount } from './budget-account.js';
import type { StoredAccount } from './budget-ledger.js';
import type { KeyRecord } from './key-record.js';

const DAY_MS = 86_400_000;

export interface RetentionPlan<T extends StoredAccount = StoredAccount> {
  /** Key records to delete (their hash and label index entries go with them). */
  readonly keyIds: readonly string[];
  /** Budget accounts to delete, each only if it still holds no lease when deleted. */
  readonly accounts: readonly T[];
}

export function holdsLeases(account: BudgetAccount): boolean {
  return Object.keys(account.leases).length > 0;
}

/** When a key stopped being usable: its expiry, or its revocation if earlier. */
export function keyEndedAtMs(key: KeyRecord): number {
  return key.revokedAtMs === null ? key.expiresAtMs : Math.min(key.expiresAtMs, key.revokedAtMs);
}

/** The end of a "day:YYYY-MM-DD" window in ms, or null for any other window. */
export function dayWindowEndMs(window: string): number | null {
  const match = /^day:(\d{4}-\d{2}-\d{2})$/.exec(window);
  if (match === null) return null;
  const start = Date.parse(`${match[1]}T00:00:00Z`);
  return Number.isNaN(start) ? null : start + DAY_MS;
}

/** True once a key ended longer ago than the retention period. */
export function isPastRetention(key: KeyRecord, nowMs: number, retentionMs: number): boolean {
  return keyEndedAtMs(key) + retentionMs <= nowMs;
}

/**
 * For a page of keys: the ones to forget, given the accounts of those past retention (read
 * after the keys; null when a key's accounts could not be read whole). A key goes with its
 * accounts, and never while any of them holds a lease.
 */
export function keysToForget<T extends StoredAccount>(keys: readonly KeyRecord[], accountsByKey: ReadonlyMap<string, readonly T[] | null>, nowMs: number, retentionMs: number): RetentionPlan<T> {
  const keyIds: string[] = [];
  const accounts: T[] = [];
  for (const key of keys) {
    if (!isPastRetention(key, nowMs, retentionMs)) continue;
    const own = accountsByKey.get(key.id);
    if (own === null || own === undefined || own.some((a) => holdsLeases(a.account))) continue;
    keyIds.push(key.id);
    accounts.push(...own);
  }
  return { keyIds, accounts };
}

/**
 * For a page of accounts: the idle ones whose key is gone, and the idle daily ones whose day
 * ended longer ago than the retention. `existingKeyIds` must have been read AFTER the accounts:
 * then a key missing from it was deleted, not created between the two reads. Accounts of a key
 * that exists go with the key (keysToForget), never here.
 */
export function accountsToRemove<T extends StoredAccount>(accounts: readonly T[], existingKeyIds: ReadonlySet<string>, nowMs: number, retentionMs: number): T[] {
  return accounts.filter((a) => {
    if (holdsLeases(a.account)) return false;
    if (!existingKeyIds.has(a.keyId)) return true;
    const dayEnd = dayWindowEndMs(a.window);
    return dayEnd !== null && dayEnd + retentionMs <= nowMs;
  });
}

/** The accounts of a page whose key must be looked up before accountsToRemove can decide. */
export function keysToLookUp(accounts: readonly StoredAccount[]): string[] {
  return [...new Set(accounts.filter((a) => !holdsLeases(a.account)).map((a) => a.keyId))];
}
