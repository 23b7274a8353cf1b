/**
 * What etcd may forget. A vault key's record and its budget accounts are kept for a retention
 * period after the key expired or was revoked (GetKey and the dashboard show them meanwhile),
 * then deleted; the audit trail in PostgreSQL keeps the history. A daily account is kept for the
 * retention period after its day ended, even for a key that is still live. Nothing that a data
 * plane may still hold a lease on is ever collected, and a lifetime account goes only with its
 * key. Pure: the janitor does the I/O.
 */
import type { BudgetAccount } from './budget-account.js';
import type { StoredAccount } from './budget-ledger.js';
import type { KeyRecord } from './key-record.js';

const DAY_MS = 86_400_000;

export interface RetentionPlan {
  /** Key records to delete (their hash index goes with them). */
  readonly keyIds: readonly string[];
  /** Budget accounts to delete, each only if it still holds no lease when deleted. */
  readonly accounts: readonly { readonly keyId: string; readonly window: string }[];
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

/**
 * `accounts` must have been read BEFORE `keys`: then an account whose key is missing from `keys`
 * belongs to a key that was deleted, not to one created between the two reads.
 */
export function retentionPlan(keys: readonly KeyRecord[], accounts: readonly StoredAccount[], nowMs: number, retentionMs: number): RetentionPlan {
  const known = new Set(keys.map((k) => k.id));
  const leased = new Set(accounts.filter((a) => holdsLeases(a.account)).map((a) => a.keyId));
  const keyIds = keys.filter((k) => keyEndedAtMs(k) + retentionMs <= nowMs && !leased.has(k.id)).map((k) => k.id);
  const forgotten = new Set(keyIds);
  const collectable = accounts.filter((a) => {
    if (holdsLeases(a.account)) return false;
    if (forgotten.has(a.keyId) || !known.has(a.keyId)) return true;
    const dayEnd = dayWindowEndMs(a.window);
    return dayEnd !== null && dayEnd + retentionMs <= nowMs;
  });
  return { keyIds, accounts: collectable.map(({ keyId, window }) => ({ keyId, window })) };
}
