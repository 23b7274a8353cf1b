/**
 * Where budget accounts live. Every change is a compare-and-swap on one account, so any number
 * of control-plane replicas can grant from the same account without locks.
 */
import { Etcd3, type Namespace } from 'etcd3';

import { OperatorError } from '../core/operator-error.js';
import { guard } from './etcd-guard.js';
import { checkInvariant, type BudgetAccount } from './budget-account.js';

export interface StoredAccount {
  readonly keyId: string;
  readonly window: string;
  readonly account: BudgetAccount;
}

export interface BudgetLedger {
  read(keyId: string, window: string): Promise<BudgetAccount | null>;
  /** Applies `change` atomically; `initial` creates the account on first use. Returns the new account. */
  update(keyId: string, window: string, initial: () => BudgetAccount, change: (account: BudgetAccount) => BudgetAccount): Promise<BudgetAccount>;
  listForKey(keyId: string): Promise<StoredAccount[]>;
  listAll(): Promise<StoredAccount[]>;
  /** Deletes the account if `stillRemovable` holds for its current value (compare-and-swap); true when it is gone. */
  removeIf(keyId: string, window: string, stillRemovable: (account: BudgetAccount) => boolean): Promise<boolean>;
  /** Calls `listener` with every account written after now; resolves to a stop function. */
  watch(listener: (stored: StoredAccount) => void): Promise<() => Promise<void>>;
  close(): void;
}

const CAS_ATTEMPTS = 32;
const PREFIX = 'ledger/';

export class EtcdBudgetLedger implements BudgetLedger {
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  /** Writes this ledger has made: the basis of the etcd-writes-per-call figure in bench:leases. */
  writes = 0;

  constructor(endpoints: readonly string[], prefix: string) {
    this.client = new Etcd3({ hosts: [...endpoints], dialTimeout: 3000 });
    this.ns = this.client.namespace(prefix);
  }

  async read(keyId: string, window: string): Promise<BudgetAccount | null> {
    const text = await guard(this.ns.get(path(keyId, window)).string());
    return text === null ? null : (JSON.parse(text) as BudgetAccount);
  }

  async update(keyId: string, window: string, initial: () => BudgetAccount, change: (account: BudgetAccount) => BudgetAccount): Promise<BudgetAccount> {
    const key = path(keyId, window);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const response = await guard(this.ns.get(key).exec());
      const kv = response.kvs[0];
      const current = kv === undefined ? initial() : (JSON.parse(kv.value.toString('utf8')) as BudgetAccount);
      const next = change(current);
      if (next === current && kv !== undefined) return current;
      checkInvariant(next);
      const txn = kv === undefined ? this.ns.if(key, 'Create', '==', 0) : this.ns.if(key, 'Mod', '==', kv.mod_revision);
      const result = await guard(txn.then(this.ns.put(key).value(JSON.stringify(next))).commit());
      if (result.succeeded) {
        this.writes++;
        return next;
      }
    }
    throw new OperatorError('conflict', `budget account ${keyId} ${window} is contended; try again`);
  }

  async listForKey(keyId: string): Promise<StoredAccount[]> {
    return this.list(`${PREFIX}${keyId}/`);
  }

  async listAll(): Promise<StoredAccount[]> {
    return this.list(PREFIX);
  }

  async removeIf(keyId: string, window: string, stillRemovable: (account: BudgetAccount) => boolean): Promise<boolean> {
    const key = path(keyId, window);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const kv = (await guard(this.ns.get(key).exec())).kvs[0];
      if (kv === undefined) return true;
      if (!stillRemovable(JSON.parse(kv.value.toString('utf8')) as BudgetAccount)) return false;
      const result = await guard(this.ns.if(key, 'Mod', '==', kv.mod_revision).then(this.ns.delete().key(key)).commit());
      if (result.succeeded) return true;
    }
    return false;
  }

  private async list(prefix: string): Promise<StoredAccount[]> {
    const all = await guard(this.ns.getAll().prefix(prefix).strings());
    return Object.entries(all).map(([key, text]) => ({ ...parsePath(key), account: JSON.parse(text) as BudgetAccount }));
  }

  async watch(listener: (stored: StoredAccount) => void): Promise<() => Promise<void>> {
    const watcher = await guard(this.ns.watch().prefix(PREFIX).create());
    watcher.on('put', (kv) => listener({ ...parsePath(kv.key.toString('utf8')), account: JSON.parse(kv.value.toString('utf8')) as BudgetAccount }));
    return async () => {
      await watcher.cancel();
    };
  }

  close(): void {
    this.client.close();
  }
}

function path(keyId: string, window: string): string {
  return `${PREFIX}${keyId}/${window}`;
}

function parsePath(key: string): { keyId: string; window: string } {
  const [, keyId = '', window = ''] = key.split('/');
  return { keyId, window };
}


/** An in-memory ledger with the same compare-and-swap semantics, for unit tests and the simulation. */
export class MemoryBudgetLedger implements BudgetLedger {
  private readonly accounts = new Map<string, BudgetAccount>();
  private readonly listeners = new Set<(stored: StoredAccount) => void>();
  writes = 0;

  async read(keyId: string, window: string): Promise<BudgetAccount | null> {
    return this.accounts.get(path(keyId, window)) ?? null;
  }

  async update(keyId: string, window: string, initial: () => BudgetAccount, change: (account: BudgetAccount) => BudgetAccount): Promise<BudgetAccount> {
    const key = path(keyId, window);
    const existing = this.accounts.get(key);
    const current = existing ?? initial();
    const next = change(current);
    if (next === current && existing !== undefined) return current;
    checkInvariant(next);
    this.accounts.set(key, next);
    this.writes++;
    for (const listener of this.listeners) listener({ keyId, window, account: next });
    return next;
  }

  async listForKey(keyId: string): Promise<StoredAccount[]> {
    return (await this.listAll()).filter((s) => s.keyId === keyId);
  }

  async listAll(): Promise<StoredAccount[]> {
    return [...this.accounts.entries()].map(([key, account]) => ({ ...parsePath(key), account }));
  }

  async removeIf(keyId: string, window: string, stillRemovable: (account: BudgetAccount) => boolean): Promise<boolean> {
    const key = path(keyId, window);
    const account = this.accounts.get(key);
    if (account === undefined) return true;
    if (!stillRemovable(account)) return false;
    this.accounts.delete(key);
    return true;
  }

  async watch(listener: (stored: StoredAccount) => void): Promise<() => Promise<void>> {
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
    };
  }

  close(): void {}
}
