/**
 * Keeps etcd from growing with every key ever issued: on a timer, each replica deletes what the
 * retention plan (retention.ts) says may go. Replicas may run it at the same time: every delete
 * is a compare-and-swap, and deleting what another replica deleted is a no-op.
 */
import type { Logger } from '../core/logger.js';
import type { BudgetLedger } from './budget-ledger.js';
import { holdsLeases, retentionPlan } from './retention.js';
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

  async runOnce(): Promise<{ keys: number; accounts: number }> {
    // Accounts first, then keys: see retentionPlan.
    const accounts = await this.options.ledger.listAll();
    const keys = await this.options.store.listKeys();
    const plan = retentionPlan(keys, accounts, this.now(), this.options.retentionMs);
    let deletedKeys = 0;
    let deletedAccounts = 0;
    // Keys first: once a key is gone no lease can be granted on its accounts.
    for (const id of plan.keyIds) if (await this.options.store.deleteKey(id)) deletedKeys++;
    for (const { keyId, window } of plan.accounts) {
      if (await this.options.ledger.removeIf(keyId, window, (account) => !holdsLeases(account))) deletedAccounts++;
    }
    if (deletedKeys + deletedAccounts > 0) {
      this.options.logger.info({ keys: deletedKeys, budget_accounts: deletedAccounts, retention_s: this.options.retentionMs / 1000 }, 'forgot keys and budget accounts past retention');
    }
    return { keys: deletedKeys, accounts: deletedAccounts };
  }
}
