/**
 * Keeps etcd from growing with every key ever issued: on a timer, each replica deletes what the
 * retention plan (retention.ts) says may go. Replicas may run it at the same time: every delete
 * is a compare-and-swap, and deleting what another replica deleted is a no-op. Keys and budget
 * accounts are walked in pages (KEYBRAKE_ETCD_PAGE_SIZE), never read whole.
 */
import type { Logger } from '../core/logger.js';
import type { BudgetLedger } from './budget-ledger.js';
import { accountsToRemove, isPastRetention, keysToForget, keysToLookUp } from './retention.js';
import type { KeyStore } from './store.js';

export interface JanitorOptions {
  readonly store: KeyStore;
  readonly ledger: BudgetLedger;
  readonly retentionMs: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class Janitor {
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(private readonly options: JanitorOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Runs now and then every `intervalMs` (a run that is still going is not started twice). */
  start(intervalMs: number): void {
    const run = () => {
      this.running ??= this.runOnce()
        .catch((error: unknown) => this.options.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'etcd retention run failed; trying again later'))
        .finally(() => (this.running = null));
    };
    run();
    this.timer = setInterval(run, intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /**
   * One retention run, a page at a time: the keys (past retention and without a lease: deleted
   * with their accounts), then the ledger (idle accounts of keys that are gone, and idle days
   * past retention). Each page costs a few batched reads and writes; nothing is read whole.
   */
  async runOnce(): Promise<{ keys: number; accounts: number }> {
    const { store, ledger, retentionMs } = this.options;
    let deletedKeys = 0;
    let deletedAccounts = 0;
    await store.walkKeys(async (page) => {
      const nowMs = this.now();
      const candidates = page.filter(({ record }) => isPastRetention(record, nowMs, retentionMs));
      if (candidates.length === 0) return;
      // Read after the keys: a lease on any of their accounts keeps the key.
      const accounts = await ledger.accountsOfKeys(candidates.map(({ record }) => record.id));
      const plan = keysToForget(candidates.map(({ record }) => record), accounts, nowMs, retentionMs);
      const forget = new Set(plan.keyIds);
      // Keys first: once a key is gone no lease can be granted on its accounts.
      const deleted = new Set(await store.deleteKeys(candidates.filter(({ record }) => forget.has(record.id))));
      deletedKeys += deleted.size;
      // A key that changed meanwhile stays, and so do its accounts (the next run looks again).
      deletedAccounts += await ledger.removeIdle(plan.accounts.filter((a) => deleted.has(a.keyId)));
    });
    await ledger.walkAccounts(async (page) => {
      // The accounts were read first; which of their keys exist is read after them.
      const existing = await store.getKeys(keysToLookUp(page));
      const remove = accountsToRemove(page, new Set(existing.keys()), this.now(), retentionMs);
      deletedAccounts += await ledger.removeIdle(remove);
    });
    if (deletedKeys + deletedAccounts > 0) {
      this.options.logger.info({ keys: deletedKeys, budget_accounts: deletedAccounts, retention_s: retentionMs / 1000 }, 'forgot keys and budget accounts past retention');
    }
    return { keys: deletedKeys, accounts: deletedAccounts };
  }
}
