/**
 * The control plane's side of spend leases: turns lease requests and usage reports from data
 * planes into compare-and-swap updates of budget accounts, expires the leases of data planes
 * that vanished, and tells holders to give back what they sit on when another needs it.
 */
import type { Logger } from '../core/logger.js';
import type { KeyPolicy, LeaseGrant, LeaseRequest, UsageReport } from '../gen/keybrake/v1/dataplane.js';
import { activeHolders, emptyAccount, expireLeases, reportUsage, requestLease, type BudgetAccount } from './budget-account.js';
import { AccountWriter } from './account-writer.js';
import { accountName, type BudgetLedger, type StoredAccount } from './budget-ledger.js';

export interface LeaseServiceOptions {
  readonly ledger: BudgetLedger;
  /** The key's current policy, as the policy feed knows it. */
  readonly keyPolicy: (keyId: string) => Promise<KeyPolicy | undefined>;
  readonly ttlMs: number;
  /** Extra time before a silent holder's lease is expired: covers clock drift and message delay. */
  readonly expiryMarginMs: number;
  readonly logger: Logger;
  readonly now?: () => number;
  /** How often the sweep reads the whole ledger instead of only the accounts it knows hold leases. */
  readonly fullSweepIntervalMs?: number;
  /** When batched account writes start (default: later in this turn of the event loop); a simulation passes its own. */
  readonly schedule?: (run: () => void) => void;
}

/** Where the sweep must look: an account's earliest lease deadline, as last seen. */
interface LeasedAccount {
  readonly keyId: string;
  readonly window: string;
  readonly earliestExpiryMs: number;
}

const DAY_MS = 86_400_000;
/** Due accounts a sweep hands the writer at once. */
const SWEEP_CHUNK = 1000;
const DAY_WINDOW = /^day:(\d{4}-\d{2}-\d{2})$/;

export type WindowCheck = { readonly capMicros: number; readonly endsAtMs: number } | { readonly refused: string };

/** Which cap a window draws on, and until when it lasts; daily windows must be near today. */
export function windowCap(policy: KeyPolicy, window: string, nowMs: number): WindowCheck {
  if (window === 'life') return policy.budgetMicros > 0 ? { capMicros: policy.budgetMicros, endsAtMs: 0 } : { refused: 'window_invalid' };
  const match = DAY_WINDOW.exec(window);
  if (match === null || policy.dailyCapMicros <= 0) return { refused: 'window_invalid' };
  const start = Date.parse(`${match[1]}T00:00:00.000Z`);
  if (Number.isNaN(start) || Math.abs(start + DAY_MS / 2 - nowMs) > DAY_MS * 1.5) return { refused: 'window_invalid' };
  return { capMicros: policy.dailyCapMicros, endsAtMs: start + DAY_MS };
}

export class LeaseService {
  private readonly now: () => number;
  /** Every account change goes through it: one at a time per account, many accounts per transaction. */
  readonly writer: AccountWriter;
  /**
   * Accounts holding leases, from every account this replica wrote or saw written (the ledger
   * watch calls `observe`), so that a sweep reads only the accounts with a lease past its
   * deadline rather than the whole ledger; a full read every `fullSweepIntervalMs` catches
   * anything a watch gap hid.
   */
  private readonly leased = new Map<string, LeasedAccount>();
  private lastFullSweepMs = Number.NEGATIVE_INFINITY;
  private readonly fullSweepIntervalMs: number;

  constructor(private readonly options: LeaseServiceOptions) {
    this.now = options.now ?? Date.now;
    this.fullSweepIntervalMs = options.fullSweepIntervalMs ?? 600_000;
    this.writer = new AccountWriter({ ledger: options.ledger, ...(options.schedule === undefined ? {} : { schedule: options.schedule }) });
  }

  /** The ledger watch had a gap: the next sweep reads the whole ledger (it may have missed leases). */
  sweepEverythingNext(): void {
    this.lastFullSweepMs = Number.NEGATIVE_INFINITY;
  }

  /** An account as written (by any replica): remembered if it holds leases, forgotten if not. */
  observe(stored: StoredAccount): void {
    const id = accountName(stored);
    let earliestExpiryMs = Number.POSITIVE_INFINITY;
    for (const lease of Object.values(stored.account.leases)) earliestExpiryMs = Math.min(earliestExpiryMs, lease.expiresAtMs);
    if (earliestExpiryMs === Number.POSITIVE_INFINITY) this.leased.delete(id);
    else this.leased.set(id, { keyId: stored.keyId, window: stored.window, earliestExpiryMs });
  }

  async handleLeaseRequest(holder: string, request: LeaseRequest): Promise<LeaseGrant> {
    const answer = (fields: Partial<LeaseGrant>): LeaseGrant => ({
      keyId: request.keyId, window: request.window, leaseId: request.leaseId, seq: request.seq,
      grantedTotalMicros: 0, ttlMs: this.options.ttlMs, short: false, refused: '', windowEndsAtUnixMs: 0, ...fields,
    });
    const nowMs = this.now();
    const policy = await this.options.keyPolicy(request.keyId);
    if (policy === undefined) return answer({ refused: 'key_unknown' });
    if (policy.revoked) return answer({ refused: 'key_revoked' });
    if (nowMs >= policy.expiresAtUnixMs) return answer({ refused: 'key_expired' });
    const window = windowCap(policy, request.window, nowMs);
    if ('refused' in window) return answer({ refused: window.refused });

    let short = false;
    const id = accountName(request);
    // A refill of an account that holds leases (a key in use) goes ahead of first grants.
    const account = await this.writer.write({
      keyId: request.keyId,
      window: request.window,
      initial: () => emptyAccount(window.capMicros),
      // A key written after the ledger began watching has no account it has not seen: no read first.
      keyRevision: policy.revision,
      change: (current) => {
        const outcome = requestLease(current, { ...request, holder, nowMs, ttlMs: this.options.ttlMs }, activeHolders(current) + 1);
        short = outcome.short;
        return outcome.account;
      },
    }, this.leased.has(id) ? 'urgent' : 'routine');
    if (account === null) throw new Error(`budget account ${id} was not created`);
    this.observe({ keyId: request.keyId, window: request.window, account });
    const lease = account.leases[request.leaseId];
    return answer({ grantedTotalMicros: lease?.grantedMicros ?? 0, short, windowEndsAtUnixMs: window.endsAtMs });
  }

  async handleUsageReport(report: UsageReport): Promise<void> {
    // A report for an account the ledger no longer has changes nothing (initial: null).
    const account = await this.writer.write({
      keyId: report.keyId,
      window: report.window,
      initial: null,
      change: (latest) => reportUsage(latest, {
        leaseId: report.leaseId,
        seq: report.seq,
        reportedMicros: report.reportedMicros,
        keepTotalMicros: report.keepTotalMicros < 0 ? null : report.keepTotalMicros,
        close: report.close,
      }),
    }, 'routine');
    if (account !== null) this.observe({ keyId: report.keyId, window: report.window, account });
  }

  /** Expires the leases of holders that went silent; any replica may run it, CAS keeps it safe. */
  async sweep(): Promise<number> {
    const nowMs = this.now();
    if (nowMs - this.lastFullSweepMs >= this.fullSweepIntervalMs) {
      // The whole ledger, a page at a time: only the accounts holding leases are remembered.
      this.leased.clear();
      await this.options.ledger.walkAccounts((page) => {
        for (const stored of page) this.observe(stored);
      });
      this.lastFullSweepMs = nowMs;
    }
    let expired = 0;
    const due = [...this.leased.values()].filter((leased) => nowMs > leased.earliestExpiryMs + this.options.expiryMarginMs);
    // A few batches' worth at a time: the writer's queue stays small however many are due.
    for (let i = 0; i < due.length; i += SWEEP_CHUNK) {
      await Promise.all(due.slice(i, i + SWEEP_CHUNK).map(async ({ keyId, window }) => {
        let changed = false;
        const account = await this.writer.write({
          keyId,
          window,
          initial: null,
          change: (latest) => {
            const next = expireLeases(latest, nowMs, this.options.expiryMarginMs);
            changed = next !== latest;
            return next;
          },
        }, 'routine');
        if (account === null) this.leased.delete(accountName({ keyId, window }));
        else this.observe({ keyId, window, account });
        if (changed) expired++;
      }));
    }
    if (expired > 0) this.options.logger.warn({ accounts: expired }, 'expired the leases of silent data planes; their unreported grants are at risk');
    return expired;
  }

  /** Spend summary of a key across its windows: what the operator API shows. */
  async accounts(keyId: string): Promise<StoredAccount[]> {
    return this.options.ledger.listForKey(keyId);
  }
}

export type { BudgetAccount };
