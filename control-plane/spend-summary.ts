/**
 * A key's money as the operator API shows it, read from the budget ledger: the window that
 * binds now (today's for a daily cap, the lifetime budget otherwise), or the tighter of both.
 */
import { currentWindows } from '../core/budget-windows.js';
import type { KeySpend } from '../gen/keybrake/v1/operator.js';
import { outstandingMicros, type BudgetAccount } from './budget-account.js';
import { accountName, type BudgetLedger } from './budget-ledger.js';
import type { KeyRecord } from './key-record.js';

export function spendOf(capMicros: number, account: BudgetAccount | undefined): KeySpend {
  const spent = account?.settledMicros ?? 0;
  const atRisk = account?.atRiskMicros ?? 0;
  return { capMicros, spentMicros: spent, leasedMicros: account === undefined ? 0 : outstandingMicros(account), atRiskMicros: atRisk, remainingMicros: capMicros - spent - atRisk };
}

/**
 * The spend of each of these keys (a page of a listing, or one key): exactly the accounts of
 * their current windows, read in batched transactions; never a walk of the ledger.
 */
export async function summariseSpend(ledger: BudgetLedger, records: readonly KeyRecord[], nowMs = Date.now()): Promise<Map<string, KeySpend>> {
  const windows = new Map(records.map((record) => [record.id, currentWindows(record, nowMs)]));
  const accounts = await ledger.readAccounts(records.flatMap((record) => windows.get(record.id)!.map(({ window }) => ({ keyId: record.id, window }))));
  const result = new Map<string, KeySpend>();
  for (const record of records) {
    const spends = windows.get(record.id)!.map(({ window, capMicros }) => spendOf(capMicros, accounts.get(accountName({ keyId: record.id, window }))));
    // The binding window is the one with the least room left.
    const binding = spends.reduce<KeySpend | undefined>((tightest, s) => (tightest === undefined || s.remainingMicros < tightest.remainingMicros ? s : tightest), undefined);
    if (binding !== undefined) result.set(record.id, binding);
  }
  return result;
}
