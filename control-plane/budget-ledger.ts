/**
 * Where budget accounts live. Every change is a compare-and-swap on one account, so any number
 * of control-plane replicas can grant from the same account without locks.
 */
import { Etcd3, type IOperation, type Namespace, type Watcher } from 'etcd3';

import { GenerationalMap } from '../core/generational-map.js';
import { OperatorError } from '../core/operator-error.js';
import { guard } from './etcd-guard.js';
import { collectPrefix, DEFAULT_ETCD_PAGE_SIZE, visitPrefix } from './etcd-pages.js';
import { checkInvariant, type BudgetAccount } from './budget-account.js';

export interface StoredAccount {
  readonly keyId: string;
  readonly window: string;
  readonly account: BudgetAccount;
}

/** An account as read, with the store revision it was last written at (for a compare-and-swap delete). */
export interface VersionedAccount extends StoredAccount {
  readonly revision: number;
}

/** Names an account: a key and one of its windows. */
export interface AccountId {
  readonly keyId: string;
  readonly window: string;
}

/** `${keyId}/${window}`: how readAccounts names what it found. */
export function accountName(id: AccountId): string {
  return `${id.keyId}/${id.window}`;
}

/**
 * One account's change in a batch: `change` is pure and may run more than once (again on a
 * fresher account after a conflict). `initial` creates the account on first use; null leaves an
 * absent account absent (a usage report for a lease the ledger no longer has).
 */
export interface AccountUpdate {
  readonly keyId: string;
  readonly window: string;
  readonly initial: (() => BudgetAccount) | null;
  readonly change: (account: BudgetAccount) => BudgetAccount;
  /**
   * The revision the key's record was read at, when known. A ledger that has watched every
   * account write since before it knows the key's accounts: one it has not seen is absent.
   */
  readonly keyRevision?: number;
}

/** What became of one update of a batch: the account as written (null: absent, left so), or why not. */
export type AccountWrite = { readonly account: BudgetAccount | null } | { readonly error: Error };

export interface BudgetLedger {
  read(keyId: string, window: string): Promise<BudgetAccount | null>;
  /** Applies `change` atomically; `initial` creates the account on first use. Returns the new account. */
  update(keyId: string, window: string, initial: () => BudgetAccount, change: (account: BudgetAccount) => BudgetAccount): Promise<BudgetAccount>;
  /**
   * Applies each update under its own compare (the account is written only if it is still as
   * read), many accounts per transaction; an account changed meanwhile is read and changed again.
   * Accounts must be distinct. Results are in the order of `updates`.
   */
  updateMany(updates: readonly AccountUpdate[]): Promise<AccountWrite[]>;
  listForKey(keyId: string): Promise<StoredAccount[]>;
  /** These accounts, read in batched transactions, by accountName; absent ones are missing. */
  readAccounts(ids: readonly AccountId[]): Promise<Map<string, BudgetAccount>>;
  /**
   * Every account of each of these keys, in batched transactions; a key with more accounts than
   * one read returns is null (not known whole).
   */
  accountsOfKeys(keyIds: readonly string[]): Promise<Map<string, VersionedAccount[] | null>>;
  /** Every account, a page at a time, by key id then window; the visitor runs before the next page is read. */
  walkAccounts(visit: (page: readonly VersionedAccount[]) => Promise<void> | void): Promise<void>;
  /** Deletes the account if `stillRemovable` holds for its current value (compare-and-swap); true when it is gone. */
  removeIf(keyId: string, window: string, stillRemovable: (account: BudgetAccount) => boolean): Promise<boolean>;
  /**
   * Deletes these accounts, in batched transactions, each only if it is still at the revision it
   * was read at; one that changed meanwhile goes only if it still holds no lease. Returns how many went.
   */
  removeIdle(accounts: readonly VersionedAccount[]): Promise<number>;
  /** Calls `listener` with every account written after now (following again from then on if the watch is lost); resolves to a stop function. */
  watch(listener: (stored: StoredAccount) => void, onRestart?: () => void): Promise<() => Promise<void>>;
  close(): void;
}

const CAS_ATTEMPTS = 32;
/** An account as known without reading it: its value and the revision it was written at (absent: null, 0). */
interface KnownAccount {
  readonly account: BudgetAccount | null;
  readonly revision: number;
}
const ABSENT: KnownAccount = { account: null, revision: 0 };
/** Accounts remembered per generation (two generations): about 300 B each. */
const KNOWN_ACCOUNTS = 50_000;
/** Rounds a batch is read and written together before what still conflicts goes one account at a time. */
const BATCH_ROUNDS = 3;
const PREFIX = 'ledger/';
/** Operations per batched transaction: under etcd's default --max-txn-ops of 128. */
const OPS_PER_TXN = 100;
/** Batched read transactions in flight at once. */
const PARALLEL_READS = 4;
/**
 * The most accounts one key's read returns: a key has its lifetime account and one per day it
 * spent within its life and the retention period after (at most 90 + 30 days by default).
 */
const ACCOUNTS_PER_KEY_READ = 1000;

export interface EtcdBudgetLedgerOptions {
  /** Accounts per range request when walking the ledger (KEYBRAKE_ETCD_PAGE_SIZE). */
  readonly pageSize?: number;
}

export class EtcdBudgetLedger implements BudgetLedger {
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  /** The namespace, which keys in a transaction's range answers still carry. */
  private readonly prefix: string;
  private readonly pageSize: number;
  /** Writes this ledger has made: the basis of the etcd-writes-per-call figure in bench:leases. */
  writes = 0;
  /** Requests (reads, transactions) this ledger has sent etcd: keybrake_ledger_etcd_requests_total. */
  requests = 0;
  /**
   * Accounts as this replica last saw them (its own writes, the watch, its reads), with the
   * revision they were written at: a batch writes them under a compare on that revision without
   * reading them first. Stale entries cost a failed compare and a read, never a wrong write.
   */
  private readonly known = new GenerationalMap<KnownAccount>(KNOWN_ACCOUNTS);
  /** The watch has seen every account write after this revision; 0 while not watching. */
  private watchedSince = 0;

  constructor(endpoints: readonly string[], prefix: string, options: EtcdBudgetLedgerOptions = {}) {
    this.client = new Etcd3({ hosts: [...endpoints], dialTimeout: 3000 });
    this.ns = this.client.namespace(prefix);
    this.prefix = prefix;
    this.pageSize = options.pageSize ?? DEFAULT_ETCD_PAGE_SIZE;
  }

  async read(keyId: string, window: string): Promise<BudgetAccount | null> {
    const text = await this.request(this.ns.get(path(keyId, window)).string());
    return text === null ? null : (JSON.parse(text) as BudgetAccount);
  }

  async update(keyId: string, window: string, initial: () => BudgetAccount, change: (account: BudgetAccount) => BudgetAccount): Promise<BudgetAccount> {
    const written = await this.updateOne({ keyId, window, initial, change });
    if ('error' in written) throw written.error;
    return written.account!;
  }

  async updateMany(updates: readonly AccountUpdate[]): Promise<AccountWrite[]> {
    requireDistinct(updates);
    const results: AccountWrite[] = new Array<AccountWrite>(updates.length);
    const indices = updates.map((_, i) => i);
    for (let i = 0; i < indices.length; i += OPS_PER_TXN) await this.writeChunk(updates, indices.slice(i, i + OPS_PER_TXN), results);
    return results;
  }

  /**
   * Up to OPS_PER_TXN accounts: one transaction reads them all, one writes every changed one,
   * each under its own compare (created: still absent; else: still at the revision read). If any
   * compare fails nothing is written; the next round reads them again, and those that moved since
   * the last read (another writer is busy on them) go on their own, so one contended account does
   * not hold up the rest.
   */
  private async writeChunk(updates: readonly AccountUpdate[], chunk: readonly number[], results: AccountWrite[]): Promise<void> {
    let pending = [...chunk];
    let readAt = new Map<number, number>();
    const alone: number[] = [];
    for (let round = 0; round < BATCH_ROUNDS && pending.length > 0; round++) {
      // First round: what this replica already knows (its own writes, the watch) is not read
      // again; the compare below says whether it is still so.
      const state = new Map<number, KnownAccount>();
      if (round === 0) {
        for (const index of pending) {
          const known = this.knownState(updates[index]!);
          if (known !== undefined) state.set(index, known);
        }
      }
      const toRead = pending.filter((index) => !state.has(index));
      const reads = await this.batch(toRead.map((i) => this.ns.get(path(updates[i]!.keyId, updates[i]!.window))));
      toRead.forEach((index, j) => {
        const kv = reads[j]?.response_range?.kvs[0];
        state.set(index, kv === undefined ? ABSENT : this.remember(path(updates[index]!.keyId, updates[index]!.window), JSON.parse(kv.value.toString('utf8')) as BudgetAccount, Number(kv.mod_revision)));
      });
      const planned: { index: number; key: string; revision: number; next: BudgetAccount }[] = [];
      const nextReadAt = new Map<number, number>();
      pending.forEach((index) => {
        const update = updates[index]!;
        const { account: stored, revision } = state.get(index)!;
        if (round > 0 && readAt.get(index) !== revision) {
          alone.push(index);
          return;
        }
        nextReadAt.set(index, revision);
        const outcome = applyUpdate(update, stored);
        if ('write' in outcome) planned.push({ index, key: path(update.keyId, update.window), revision, next: outcome.write });
        else results[index] = outcome;
      });
      if (planned.length === 0) return this.writeAlone(updates, alone, results);
      const result = await this.request(this.ifUnchanged(planned).then(...planned.map((p) => this.ns.put(p.key).value(JSON.stringify(p.next)))).commit());
      if (result.succeeded) {
        this.writes += planned.length;
        const revision = Number(result.header.revision);
        for (const p of planned) results[p.index] = { account: this.remember(p.key, p.next, revision).account };
        return this.writeAlone(updates, alone, results);
      }
      pending = planned.map((p) => p.index);
      readAt = nextReadAt;
    }
    return this.writeAlone(updates, [...alone, ...pending], results);
  }

  private async writeAlone(updates: readonly AccountUpdate[], indices: readonly number[], results: AccountWrite[]): Promise<void> {
    await Promise.all(indices.map(async (index) => {
      results[index] = await this.updateOne(updates[index]!);
    }));
  }

  /** One account, compare-and-swap until it holds (or CAS_ATTEMPTS conflicts in a row). */
  private async updateOne(update: AccountUpdate): Promise<AccountWrite> {
    const key = path(update.keyId, update.window);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const response = await this.request(this.ns.get(key).exec());
      const kv = response.kvs[0];
      const outcome = applyUpdate(update, kv === undefined ? null : (JSON.parse(kv.value.toString('utf8')) as BudgetAccount));
      if (!('write' in outcome)) return outcome;
      const revision = kv === undefined ? 0 : Number(kv.mod_revision);
      const result = await this.request(this.ifUnchanged([{ key, revision }]).then(this.ns.put(key).value(JSON.stringify(outcome.write))).commit());
      if (result.succeeded) {
        this.writes++;
        this.remember(key, outcome.write, Number(result.header.revision));
        return { account: outcome.write };
      }
    }
    return { error: new OperatorError('conflict', `budget account ${update.keyId} ${update.window} is contended; try again`) };
  }

  async listForKey(keyId: string): Promise<StoredAccount[]> {
    const { kvs } = await collectPrefix(this.ns, `${PREFIX}${keyId}/`, this.pageSize);
    return kvs.map((kv) => ({ ...parsePath(kv.key.toString('utf8')), account: JSON.parse(kv.value.toString('utf8')) as BudgetAccount }));
  }

  async readAccounts(ids: readonly AccountId[]): Promise<Map<string, BudgetAccount>> {
    const found = new Map<string, BudgetAccount>();
    const chunks: AccountId[][] = [];
    for (let i = 0; i < ids.length; i += OPS_PER_TXN) chunks.push(ids.slice(i, i + OPS_PER_TXN));
    // A listing page's accounts (up to 2,000 for 1,000 keys): PARALLEL_READS transactions at a time.
    for (let i = 0; i < chunks.length; i += PARALLEL_READS) {
      await Promise.all(chunks.slice(i, i + PARALLEL_READS).map(async (chunk) => {
        const responses = await this.batch(chunk.map((id) => this.ns.get(path(id.keyId, id.window))));
        responses.forEach((response, j) => {
          const kv = response.response_range?.kvs[0];
          if (kv !== undefined) found.set(accountName(chunk[j]!), JSON.parse(kv.value.toString('utf8')) as BudgetAccount);
        });
      }));
    }
    return found;
  }

  async accountsOfKeys(keyIds: readonly string[]): Promise<Map<string, VersionedAccount[] | null>> {
    const found = new Map<string, VersionedAccount[] | null>();
    const unique = [...new Set(keyIds)];
    for (let i = 0; i < unique.length; i += OPS_PER_TXN) {
      const chunk = unique.slice(i, i + OPS_PER_TXN);
      const responses = await this.batch(chunk.map((keyId) => this.ns.getAll().prefix(`${PREFIX}${keyId}/`).limit(ACCOUNTS_PER_KEY_READ)));
      responses.forEach((response, j) => {
        const range = response.response_range;
        if (range === undefined || range === null) return;
        found.set(chunk[j]!, range.more ? null : range.kvs.map((kv) => this.versioned(kv.key.toString('utf8').slice(this.prefix.length), kv)));
      });
    }
    return found;
  }

  async walkAccounts(visit: (page: readonly VersionedAccount[]) => Promise<void> | void): Promise<void> {
    await visitPrefix(this.ns, PREFIX, this.pageSize, (kvs) => visit(kvs.map((kv) => this.versioned(kv.key.toString('utf8'), kv))));
  }

  async removeIdle(accounts: readonly VersionedAccount[]): Promise<number> {
    let removed = 0;
    for (let i = 0; i < accounts.length; i += OPS_PER_TXN) {
      const chunk = accounts.slice(i, i + OPS_PER_TXN);
      const [first, ...rest] = chunk;
      if (first === undefined) continue;
      const txn = this.ns.if(path(first.keyId, first.window), 'Mod', '==', first.revision);
      for (const a of rest) txn.and(path(a.keyId, a.window), 'Mod', '==', a.revision);
      const result = await this.request(txn.then(...chunk.map((a) => this.ns.delete().key(path(a.keyId, a.window)))).commit());
      if (result.succeeded) {
        for (const a of chunk) this.known.delete(path(a.keyId, a.window));
        removed += chunk.length;
        continue;
      }
      // One changed (or went) meanwhile: each on its own, and only while it holds no lease.
      for (const a of chunk) if (await this.removeIf(a.keyId, a.window, (account) => Object.keys(account.leases).length === 0)) removed++;
    }
    return removed;
  }

  /** A transaction that only reads: a compare that always holds (no key's version is negative), then the reads. */
  private async batch(ops: readonly IOperation[]) {
    if (ops.length === 0) return [];
    const result = await this.request(this.ns.if(PREFIX, 'Version', '>', -1).then(...ops).commit());
    return result.responses;
  }

  private versioned(key: string, kv: { value: Buffer; mod_revision: string }): VersionedAccount {
    return { ...parsePath(key), account: JSON.parse(kv.value.toString('utf8')) as BudgetAccount, revision: Number(kv.mod_revision) };
  }

  async removeIf(keyId: string, window: string, stillRemovable: (account: BudgetAccount) => boolean): Promise<boolean> {
    const key = path(keyId, window);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const kv = (await this.request(this.ns.get(key).exec())).kvs[0];
      if (kv === undefined) return true;
      if (!stillRemovable(JSON.parse(kv.value.toString('utf8')) as BudgetAccount)) return false;
      const result = await this.request(this.ns.if(key, 'Mod', '==', kv.mod_revision).then(this.ns.delete().key(key)).commit());
      if (result.succeeded) {
        this.known.delete(key);
        return true;
      }
    }
    return false;
  }

  /**
   * Follows every account write from now on. etcd cancels a watch whose resume point was
   * compacted away when its stream reconnects (a quiet watch's resume point is only as recent as
   * its last event or progress notice): then a new watch starts from now. What was missed in
   * between only delays a reclaim or a sweep (the lease sweep reads the whole ledger now and
   * then anyway); `onRestart` says it happened.
   */
  async watch(listener: (stored: StoredAccount) => void, onRestart?: () => void): Promise<() => Promise<void>> {
    let stopped = false;
    let current: Watcher | null = null;
    const follow = async (): Promise<void> => {
      // From a revision read first, so that "watched since" is exact.
      const since = Number((await this.request(this.ns.get(PREFIX).exec())).header.revision);
      const watcher = await this.request(this.ns.watch().prefix(PREFIX).startRevision(String(since + 1)).create());
      watcher.on('put', (kv) => {
        const key = kv.key.toString('utf8');
        const account = this.remember(key, JSON.parse(kv.value.toString('utf8')) as BudgetAccount, Number(kv.mod_revision)).account!;
        listener({ ...parsePath(key), account });
      });
      watcher.on('delete', (kv) => this.known.delete(kv.key.toString('utf8')));
      watcher.on('error', () => {
        if (stopped || current !== watcher) return;
        current = null;
        this.watchedSince = 0;
        const again = () => {
          if (stopped) return;
          follow().then(() => onRestart?.(), () => setTimeout(again, 1000));
        };
        setTimeout(again, 100);
      });
      current = watcher;
      this.watchedSince = since;
    };
    await follow();
    return async () => {
      stopped = true;
      this.watchedSince = 0;
      await current?.cancel();
    };
  }

  close(): void {
    this.client.close();
  }

  /** A transaction that goes ahead only if every account is as read: still absent (revision 0: create revision 0), or still at that revision. */
  private ifUnchanged(accounts: readonly { readonly key: string; readonly revision: number }[]) {
    const [first, ...rest] = accounts;
    const txn = first!.revision === 0 ? this.ns.if(first!.key, 'Create', '==', 0) : this.ns.if(first!.key, 'Mod', '==', first!.revision);
    for (const a of rest) {
      if (a.revision === 0) txn.and(a.key, 'Create', '==', 0);
      else txn.and(a.key, 'Mod', '==', a.revision);
    }
    return txn;
  }

  /** The account as this replica knows it without reading: remembered, or absent (a key newer than the watch). */
  private knownState(update: AccountUpdate): KnownAccount | undefined {
    const known = this.known.get(path(update.keyId, update.window));
    if (known !== undefined) return known;
    if (this.watchedSince > 0 && (update.keyRevision ?? 0) > this.watchedSince) return ABSENT;
    return undefined;
  }

  /** Keeps the newer of what is known and what was just seen; returns what is known now. */
  private remember(key: string, account: BudgetAccount, revision: number): KnownAccount {
    const known = this.known.get(key);
    if (known !== undefined && known.revision > revision) return known;
    const seen = { account, revision };
    this.known.set(key, seen);
    return seen;
  }

  private request<T>(sent: Promise<T>): Promise<T> {
    this.requests++;
    return guard(sent);
  }
}

/**
 * An update applied to the account as read (null: absent): what to write, or the result as it
 * stands (nothing to change, nothing to create, or a change that would break the invariant).
 */
function applyUpdate(update: AccountUpdate, stored: BudgetAccount | null): { readonly write: BudgetAccount } | AccountWrite {
  const current = stored ?? update.initial?.() ?? null;
  if (current === null) return { account: null };
  try {
    const next = update.change(current);
    if (next === current && stored !== null) return { account: current };
    checkInvariant(next);
    return { write: next };
  } catch (error) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }
}

/** One transaction cannot put the same key twice; a batch names each account once. */
function requireDistinct(updates: readonly AccountUpdate[]): void {
  if (new Set(updates.map(accountName)).size !== updates.length) throw new Error('a batch of account updates names one account twice');
}

function path(keyId: string, window: string): string {
  return `${PREFIX}${keyId}/${window}`;
}

function parsePath(key: string): { keyId: string; window: string } {
  const [, keyId = '', window = ''] = key.split('/');
  return { keyId, window };
}


export interface MemoryBudgetLedgerOptions {
  readonly pageSize?: number;
  /** Runs between a batch's read and its write: a simulation lets other work in there, as etcd's network does. */
  readonly betweenReadAndWrite?: () => Promise<void>;
  /** A batch's compare failed (an account changed since it was read): it is read and applied again. */
  readonly onConflict?: () => void;
}

/** An in-memory ledger with the same compare-and-swap semantics, for unit tests and the simulation. */
export class MemoryBudgetLedger implements BudgetLedger {
  private readonly accounts = new Map<string, BudgetAccount>();
  /** The "revision" each account was last written at, as etcd's mod_revision. */
  private readonly revisions = new Map<string, number>();
  private revision = 0;
  private readonly listeners = new Set<(stored: StoredAccount) => void>();
  /** Accounts written, and the write transactions that wrote them. */
  writes = 0;
  transactions = 0;

  private readonly pageSize: number;

  constructor(private readonly options: MemoryBudgetLedgerOptions = {}) {
    this.pageSize = options.pageSize ?? DEFAULT_ETCD_PAGE_SIZE;
  }

  async read(keyId: string, window: string): Promise<BudgetAccount | null> {
    return this.accounts.get(path(keyId, window)) ?? null;
  }

  async update(keyId: string, window: string, initial: () => BudgetAccount, change: (account: BudgetAccount) => BudgetAccount): Promise<BudgetAccount> {
    const written = this.updateNow({ keyId, window, initial, change });
    if ('error' in written) throw written.error;
    return written.account!;
  }

  /** As etcd does it: read every account, (let others in,) write all if every compare holds, else read again. */
  async updateMany(updates: readonly AccountUpdate[]): Promise<AccountWrite[]> {
    requireDistinct(updates);
    const results = new Array<AccountWrite>(updates.length);
    let pending = updates.map((_, i) => i);
    for (let round = 0; round < BATCH_ROUNDS && pending.length > 0; round++) {
      const read = pending.map((index) => {
        const key = path(updates[index]!.keyId, updates[index]!.window);
        return { index, key, stored: this.accounts.get(key) ?? null, revision: this.revisions.get(key) ?? 0 };
      });
      await this.options.betweenReadAndWrite?.();
      const planned: { index: number; key: string; revision: number; next: BudgetAccount }[] = [];
      for (const r of read) {
        const outcome = applyUpdate(updates[r.index]!, r.stored);
        if ('write' in outcome) planned.push({ index: r.index, key: r.key, revision: r.revision, next: outcome.write });
        else results[r.index] = outcome;
      }
      if (planned.every((p) => this.compareHolds(p.key, p.revision))) {
        if (planned.length > 0) this.transactions++;
        for (const p of planned) results[p.index] = { account: this.put(updates[p.index]!, p.next) };
        return results;
      }
      this.options.onConflict?.();
      pending = planned.map((p) => p.index);
    }
    for (const index of pending) results[index] = this.updateNow(updates[index]!);
    return results;
  }

  /** A batch's compare for one account: still absent (revision 0), or still at the revision read. */
  protected compareHolds(key: string, revision: number): boolean {
    return (this.revisions.get(key) ?? 0) === revision;
  }

  private updateNow(update: AccountUpdate): AccountWrite {
    const outcome = applyUpdate(update, this.accounts.get(path(update.keyId, update.window)) ?? null);
    if (!('write' in outcome)) return outcome;
    this.transactions++;
    return { account: this.put(update, outcome.write) };
  }

  private put(id: AccountId, account: BudgetAccount): BudgetAccount {
    const key = path(id.keyId, id.window);
    this.accounts.set(key, account);
    this.revisions.set(key, ++this.revision);
    this.writes++;
    for (const listener of this.listeners) listener({ keyId: id.keyId, window: id.window, account });
    return account;
  }

  async listForKey(keyId: string): Promise<StoredAccount[]> {
    return this.sorted().filter((s) => s.keyId === keyId);
  }

  async readAccounts(ids: readonly AccountId[]): Promise<Map<string, BudgetAccount>> {
    const found = new Map<string, BudgetAccount>();
    for (const id of ids) {
      const account = this.accounts.get(path(id.keyId, id.window));
      if (account !== undefined) found.set(accountName(id), account);
    }
    return found;
  }

  async accountsOfKeys(keyIds: readonly string[]): Promise<Map<string, VersionedAccount[] | null>> {
    const all = this.sorted();
    return new Map(keyIds.map((keyId) => [keyId, all.filter((s) => s.keyId === keyId)]));
  }

  async walkAccounts(visit: (page: readonly VersionedAccount[]) => Promise<void> | void): Promise<void> {
    const all = this.sorted();
    for (let i = 0; i < all.length; i += this.pageSize) await visit(all.slice(i, i + this.pageSize));
  }

  async removeIdle(accounts: readonly VersionedAccount[]): Promise<number> {
    let removed = 0;
    for (const a of accounts) {
      const key = path(a.keyId, a.window);
      const unchanged = this.revisions.get(key) === a.revision;
      if (await this.removeIf(a.keyId, a.window, (account) => unchanged || Object.keys(account.leases).length === 0)) removed++;
    }
    return removed;
  }

  /** Every account in etcd's order (by key id, then window), as a walk would see them. */
  private sorted(): VersionedAccount[] {
    return [...this.accounts.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, account]) => ({ ...parsePath(key), account, revision: this.revisions.get(key) ?? 0 }));
  }

  async removeIf(keyId: string, window: string, stillRemovable: (account: BudgetAccount) => boolean): Promise<boolean> {
    const key = path(keyId, window);
    const account = this.accounts.get(key);
    if (account === undefined) return true;
    if (!stillRemovable(account)) return false;
    this.accounts.delete(key);
    this.revisions.delete(key);
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
