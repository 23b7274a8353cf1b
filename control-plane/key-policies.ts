/**
 * Key policies as a control-plane replica serves them: looked up in etcd when a data plane first
 * sees a key (by keyed hash) or when a lease is asked for one (by id), and kept in a bounded
 * memory of the keys in use, which the policy watch keeps current. Nothing here holds or reads
 * the whole keyspace: memory follows the keys being used, not the keys that exist.
 */
import type { KeyPolicy } from '../gen/keybrake/v1/dataplane.js';
import { CoalescedReads } from '../core/coalesced-reads.js';
import { GenerationalMap } from '../core/generational-map.js';
import type { KeyRecord } from './key-record.js';
import type { KeyStore, PolicyChange, VersionedKey } from './store.js';

/** Policies remembered per replica: the keys in use (a key is ~0.5 KB here). */
const DEFAULT_CAPACITY = 50_000;

export interface LookupResult {
  readonly found: readonly KeyPolicy[];
  readonly unknownHashes: readonly string[];
}

export class KeyPolicies {
  private readonly byId: GenerationalMap<KeyPolicy>;
  /** Lookups from every data plane that arrive while others are read go to etcd together. */
  private readonly hashReads: CoalescedReads<VersionedKey>;
  /** Lease requests for keys not remembered (after a restart, on a second replica): read together too. */
  private readonly idReads: CoalescedReads<KeyRecord>;

  constructor(
    private readonly store: KeyStore,
    capacity = DEFAULT_CAPACITY,
  ) {
    this.byId = new GenerationalMap(capacity);
    this.hashReads = new CoalescedReads((hashes) => this.store.findKeysByHash(hashes));
    this.idReads = new CoalescedReads((ids) => this.store.getKeys(ids));
  }

  /** The policies of the keys with these hashes, as etcd has them now (a few reads for any number). */
  async byHashes(keyHashes: readonly string[]): Promise<LookupResult> {
    const found = await this.hashReads.read(keyHashes);
    const policies: KeyPolicy[] = [];
    const unknownHashes: string[] = [];
    for (const hash of new Set(keyHashes)) {
      const versioned = found.get(hash);
      if (versioned === undefined) {
        unknownHashes.push(hash);
        continue;
      }
      policies.push(this.remember(toKeyPolicy(versioned.record, versioned.revision)));
    }
    return { found: policies, unknownHashes };
  }

  /** The policy of one key (for a lease request): remembered, or read from etcd; undefined when there is no such key. */
  async byKeyId(id: string): Promise<KeyPolicy | undefined> {
    const remembered = this.byId.get(id);
    if (remembered !== undefined) return remembered;
    const record = (await this.idReads.read([id])).get(id);
    if (record === undefined) return undefined;
    // Revision unknown (0): any change the watch delivers replaces it.
    return this.remember(toKeyPolicy(record, 0));
  }

  /** A committed change from the policy watch: remembered keys follow it. */
  apply(change: PolicyChange): void {
    if (change.kind === 'key-put') {
      const current = this.byId.get(change.record.id);
      if (current !== undefined && current.revision <= change.revision) this.byId.set(change.record.id, toKeyPolicy(change.record, change.revision));
    } else if (change.kind === 'key-delete') {
      this.byId.delete(change.id);
    }
  }

  /** Forgets every remembered key (after a gap in the watch that kept them current). */
  clear(): void {
    this.byId.clear();
  }

  get size(): number {
    return this.byId.size;
  }

  /** Keeps the newer of what is remembered and what was just read (a change may have overtaken the read). */
  private remember(policy: KeyPolicy): KeyPolicy {
    const current = this.byId.get(policy.id);
    if (current !== undefined && current.revision > policy.revision) return current;
    this.byId.set(policy.id, policy);
    return policy;
  }
}

export function toKeyPolicy(record: KeyRecord, revision: number): KeyPolicy {
  return {
    id: record.id,
    keyHash: record.keyHash,
    vendor: record.vendor,
    label: record.label,
    allowedEndpoints: [...record.allowedEndpoints],
    dailyCapMicros: record.dailyCapMicros,
    budgetMicros: record.budgetMicros,
    expiresAtUnixMs: record.expiresAtMs,
    revoked: record.revokedAtMs !== null,
    perCallEstimateMicros: record.perCallEstimateMicros ?? 0,
    revision,
  };
}
