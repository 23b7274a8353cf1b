/**
 * Budget-account changes on their way to the ledger: one change at a time per account (in the
 * order they arrived), many accounts per etcd transaction. A foreach's first wave asks for ten
 * thousand first leases at once; one transaction each would queue them behind one another (and
 * behind the busy keys' refills). Here they go a hundred accounts to a read and a write, each
 * account still under its own compare, so the budget invariant holds per key exactly as with
 * one transaction per change.
 *
 * No batch waits for company: a batch starts as soon as a slot is free (after the messages
 * already received have been queued), so a lone request goes at once and a burst forms batches
 * while the earlier ones are being written. Changes to accounts that hold leases (refills of
 * keys in use) go ahead of first grants and routine reports in every batch.
 */
import type { BudgetAccount } from './budget-account.js';
import { accountName, type AccountUpdate, type BudgetLedger } from './budget-ledger.js';

export interface AccountWriterOptions {
  readonly ledger: BudgetLedger;
  /** Accounts per batch: under etcd's default of 128 operations per transaction. */
  readonly batchSize?: number;
  /** Batches being written at once. */
  readonly parallelBatches?: number;
  /** Starts queued work later in this turn of the event loop; a simulation passes its own clock's. */
  readonly schedule?: (run: () => void) => void;
}

export type Lane = 'urgent' | 'routine';

interface Queued {
  readonly update: AccountUpdate;
  readonly resolve: (account: BudgetAccount | null) => void;
  readonly reject: (error: Error) => void;
  /** The account right after this change, in the latest attempt to write it. */
  after: BudgetAccount | null;
}

export class AccountWriter {
  private readonly lanes: Record<Lane, Map<string, Queued[]>> = { urgent: new Map(), routine: new Map() };
  /** Accounts in a batch being written: their next changes wait for the batch after. */
  private readonly writing = new Set<string>();
  private batchesInFlight = 0;
  private scheduled = false;
  private readonly batchSize: number;
  private readonly parallelBatches: number;
  private readonly schedule: (run: () => void) => void;
  /** Batches written (each a read and a write transaction, or fewer): for metrics and benchmarks. */
  batches = 0;

  constructor(private readonly options: AccountWriterOptions) {
    this.batchSize = options.batchSize ?? 100;
    this.parallelBatches = options.parallelBatches ?? 2;
    this.schedule = options.schedule ?? setImmediate;
  }

  /** Applies `update` after every change queued before it for the same account; resolves to the account after it. */
  write(update: AccountUpdate, lane: Lane): Promise<BudgetAccount | null> {
    const name = accountName(update);
    return new Promise((resolve, reject) => {
      const queued: Queued = { update, resolve, reject, after: null };
      // An account has one queue: an urgent change takes whatever waits for the account along.
      const routine = this.lanes.routine.get(name);
      if (lane === 'urgent' && routine !== undefined) {
        this.lanes.routine.delete(name);
        this.lanes.urgent.set(name, [...routine, queued]);
      } else {
        const own = this.lanes.urgent.get(name) ?? routine;
        if (own !== undefined) own.push(queued);
        else this.lanes[lane].set(name, [queued]);
      }
      this.kick();
    });
  }

  private kick(): void {
    if (this.scheduled || this.batchesInFlight >= this.parallelBatches) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      while (this.batchesInFlight < this.parallelBatches) {
        const batch = this.take();
        if (batch.length === 0) return;
        this.batchesInFlight++;
        void this.run(batch);
      }
    });
  }

  /** Up to batchSize accounts not being written, urgent first, each with every change it has waiting. */
  private take(): Queued[][] {
    const batch: Queued[][] = [];
    for (const lane of [this.lanes.urgent, this.lanes.routine]) {
      for (const [name, queued] of lane) {
        if (batch.length >= this.batchSize) return batch;
        if (this.writing.has(name)) continue;
        lane.delete(name);
        this.writing.add(name);
        batch.push(queued);
      }
    }
    return batch;
  }

  private async run(batch: readonly Queued[][]): Promise<void> {
    try {
      const results = await this.options.ledger.updateMany(batch.map(composed));
      this.batches++;
      results.forEach((result, i) => {
        for (const queued of batch[i]!) {
          if ('error' in result) queued.reject(result.error);
          else queued.resolve(result.account === null ? null : queued.after);
        }
      });
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const queued of batch.flat()) queued.reject(failure);
    } finally {
      for (const queued of batch) this.writing.delete(accountName(queued[0]!.update));
      this.batchesInFlight--;
      this.kick();
    }
  }
}

/** An account's waiting changes as one: applied in order, each remembering the account it left. */
function composed(queued: readonly Queued[]): AccountUpdate {
  const first = queued[0]!.update;
  const initial = queued.find((q) => q.update.initial !== null)?.update.initial ?? null;
  const keyRevision = queued.find((q) => q.update.keyRevision !== undefined)?.update.keyRevision;
  return {
    keyId: first.keyId,
    window: first.window,
    initial,
    ...(keyRevision === undefined ? {} : { keyRevision }),
    change: (account) => {
      let current = account;
      for (const q of queued) {
        current = q.update.change(current);
        q.after = current;
      }
      return current;
    },
  };
}
