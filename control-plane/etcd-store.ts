import { Etcd3, type Namespace } from 'etcd3';

import { OperatorError } from '../core/operator-error.js';
import { guard } from './etcd-guard.js';
import { decodeKeyRecord, encodeKeyRecord, type KeyRecord } from './key-record.js';
import { collectPrefix, DEFAULT_ETCD_PAGE_SIZE, visitPrefix, walkPrefix } from './etcd-pages.js';
import { KEY_PREFIX, LABEL_INDEX_MARKER, labelIndexKey, listingScope, positionKey, positionOf, scopePrefix, type KeyPosition } from './key-listing.js';
import type { CredentialRecord, KeyListPage, KeyListQuery, KeyStore, PolicyChange, SecretState, TokenRecord, VersionedKey } from './store.js';

export interface EtcdStoreOptions {
  readonly endpoints: readonly string[];
  /** Every key Keybrake writes lives under this prefix (default "/keybrake/"). */
  readonly prefix: string;
  /** Keys per range request when walking a prefix (KEYBRAKE_ETCD_PAGE_SIZE). */
  readonly pageSize?: number;
}

/** Reads per transaction when looking keys up by hash: well under etcd's default --max-txn-ops of 128. */
const READS_PER_TXN = 100;
/** A listing page's record reads in flight at once (4 × 100 gets). */
const PARALLEL_READS = 4;

/**
 * etcd's default --max-txn-ops is 128 (compares and operations counted apart): a key takes
 * three puts (record, hash index, label index) and two compares, so 42 keys are 126 puts.
 */
const KEYS_PER_TXN = 42;
/** Deleting a key is three deletes and one compare. */
const DELETES_PER_TXN = 42;
/** Label index entries per transaction when building the index: one compare and one put each. */
const INDEX_PUTS_PER_TXN = 100;
const PARALLEL_TXNS = 16;
const CAS_ATTEMPTS = 8;

const paths = {
  key: (id: string) => `${KEY_PREFIX}${id}`,
  keyHash: (hash: string) => `key-hashes/${hash}`,
  token: (hash: string) => `tokens/${hash}`,
  credential: (vendor: string) => `credentials/${vendor}`,
};

export class EtcdStore implements KeyStore {
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  private readonly pageSize: number;

  constructor(private readonly options: EtcdStoreOptions) {
    this.client = new Etcd3({ hosts: [...options.endpoints], dialTimeout: 3000 });
    this.ns = this.client.namespace(options.prefix);
    this.pageSize = options.pageSize ?? DEFAULT_ETCD_PAGE_SIZE;
  }

  async createKeys(records: readonly KeyRecord[]): Promise<void> {
    const chunks: KeyRecord[][] = [];
    for (let i = 0; i < records.length; i += KEYS_PER_TXN) chunks.push(records.slice(i, i + KEYS_PER_TXN));
    const written: KeyRecord[][] = [];
    let failure: unknown = null;
    // A batch larger than one transaction is written chunk by chunk; if any chunk fails, the
    // chunks already written are deleted again, so the caller never sees half a batch. The
    // secrets of those keys were never returned, so nobody can have used them meanwhile.
    let next = 0;
    const worker = async () => {
      while (failure === null && next < chunks.length) {
        const chunk = chunks[next++]!;
        try {
          await this.createChunk(chunk);
          written.push(chunk);
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_TXNS, chunks.length) }, worker));
    if (failure !== null) {
      await Promise.allSettled(written.map((chunk) => this.deleteChunk(chunk)));
      throw failure;
    }
  }

  private async createChunk(chunk: readonly KeyRecord[]): Promise<void> {
    const first = chunk[0];
    if (first === undefined) return;
    const txn = this.ns.if(paths.key(first.id), 'Create', '==', 0);
    for (const record of chunk) {
      if (record !== first) txn.and(paths.key(record.id), 'Create', '==', 0);
      txn.and(paths.keyHash(record.keyHash), 'Create', '==', 0);
    }
    txn.then(...chunk.flatMap((record) => {
      const label = labelIndexKey(record.label, record.id);
      return [
        this.ns.put(paths.key(record.id)).value(encodeKeyRecord(record)),
        this.ns.put(paths.keyHash(record.keyHash)).value(record.id),
        ...(label === null ? [] : [this.ns.put(label).value('')]),
      ];
    }));
    const result = await guard(txn.commit());
    if (!result.succeeded) throw new OperatorError('conflict', 'a key id or key hash already exists; nothing was issued');
  }

  private async deleteChunk(chunk: readonly KeyRecord[]): Promise<void> {
    await this.ns.if(paths.key(chunk[0]!.id), 'Version', '>', -1)
      .then(...chunk.flatMap((r) => this.deleteOps(r)))
      .commit();
  }

  /** A key's record and both its index entries: what deleting a key removes, in one transaction. */
  private deleteOps(record: KeyRecord) {
    const label = labelIndexKey(record.label, record.id);
    return [
      this.ns.delete().key(paths.key(record.id)),
      this.ns.delete().key(paths.keyHash(record.keyHash)),
      ...(label === null ? [] : [this.ns.delete().key(label)]),
    ];
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const text = await guard(this.ns.get(paths.key(id)).string());
    return text === null ? null : decodeKeyRecord(text, id);
  }

  async findKeyIdByHash(keyHash: string): Promise<string | null> {
    return guard(this.ns.get(paths.keyHash(keyHash)).string());
  }

  async findKeysByHash(keyHashes: readonly string[]): Promise<Map<string, VersionedKey>> {
    const found = new Map<string, VersionedKey>();
    const hashes = [...new Set(keyHashes)];
    // Two rounds of multi-get transactions: hash → id, then id → record.
    const ids = await this.readMany(hashes.map((hash) => paths.keyHash(hash)));
    const byHash = hashes.flatMap((hash, i) => (ids[i] === null ? [] : [{ hash, id: ids[i]!.value.toString('utf8') }]));
    const records = await this.readMany(byHash.map(({ id }) => paths.key(id)));
    byHash.forEach(({ hash, id }, i) => {
      const kv = records[i];
      if (kv === null || kv === undefined) return;
      const record = decodeKeyRecord(kv.value.toString('utf8'), id);
      // A hash index entry that outlived its key (or points at another key) finds nothing.
      if (record.keyHash === hash) found.set(hash, { record, revision: Number(kv.mod_revision) });
    });
    return found;
  }

  /** The current value of each key (null when absent), in order, READS_PER_TXN per transaction. */
  private async readMany(keys: readonly string[]): Promise<({ value: Buffer; mod_revision: string } | null)[]> {
    const out: ({ value: Buffer; mod_revision: string } | null)[] = [];
    for (let i = 0; i < keys.length; i += READS_PER_TXN) {
      const chunk = keys.slice(i, i + READS_PER_TXN);
      // A compare that always holds (a key's version is never negative): the transaction is a batch of reads.
      const result = await guard(this.ns.if(chunk[0]!, 'Version', '>', -1).then(...chunk.map((key) => this.ns.get(key))).commit());
      for (const response of result.responses) {
        const kv = response.response_range?.kvs[0];
        out.push(kv === undefined ? null : { value: kv.value, mod_revision: kv.mod_revision });
      }
    }
    return out;
  }

  async getKeys(ids: readonly string[]): Promise<Map<string, KeyRecord>> {
    const unique = [...new Set(ids)];
    const kvs = await this.readMany(unique.map((id) => paths.key(id)));
    const found = new Map<string, KeyRecord>();
    unique.forEach((id, i) => {
      const kv = kvs[i];
      if (kv !== null && kv !== undefined) found.set(id, decodeKeyRecord(kv.value.toString('utf8'), id));
    });
    return found;
  }

  async listKeyPage(query: KeyListQuery): Promise<KeyListPage> {
    const scope = listingScope(query.label, query.labelPrefix);
    if (scope.kind === 'none' || query.limit < 1 || query.maxExamined < 1) return { records: [], next: null };
    const records: KeyRecord[] = [];
    let examined = 0;
    const walk = walkPrefix(this.ns, scopePrefix(scope), {
      pageSize: Math.min(this.pageSize, query.maxExamined),
      ...(query.after === null ? {} : { after: positionKey(query.after) }),
    });
    for await (const page of walk) {
      // Index entries name keys: their records are read in transactions of READS_PER_TXN gets,
      // PARALLEL_READS at a time, and only as many as the page needs (a filter that is met by the
      // first keys reads no more).
      const step = READS_PER_TXN * PARALLEL_READS;
      for (let start = 0; start < page.kvs.length; start += step) {
        const slice = page.kvs.slice(start, Math.min(start + step, start + query.maxExamined - examined));
        const batches: (typeof slice)[] = [];
        for (let i = 0; i < slice.length; i += READS_PER_TXN) batches.push(slice.slice(i, i + READS_PER_TXN));
        const candidates = (await Promise.all(batches.map((batch) => this.candidates(batch, scope.kind === 'all')))).flat();
        for (let i = 0; i < candidates.length; i++) {
          const { position, record } = candidates[i]!;
          examined++;
          if (record !== null && query.accept(record)) records.push(record);
          if (records.length >= query.limit || examined >= query.maxExamined) {
            const more = start + i < page.kvs.length - 1 || page.more;
            return { records, next: more ? position : null };
          }
        }
      }
    }
    return { records, next: null };
  }

  /** The keys a slice of a walk names, one per entry: records as walked (`keys/`), or read for index entries. */
  private async candidates(kvs: readonly { key: Buffer; value: Buffer }[], walkedRecords: boolean): Promise<{ position: KeyPosition; record: KeyRecord | null }[]> {
    // Every key of the walked prefixes names a position (positionOf is null only outside them).
    const positions = kvs.map((kv) => positionOf(kv.key.toString('utf8')) ?? { label: null, id: '' });
    if (walkedRecords) return kvs.map((kv, i) => ({ position: positions[i]!, record: decodeKeyRecord(kv.value.toString('utf8'), positions[i]!.id) }));
    const read = await this.readMany(positions.map((p) => paths.key(p.id)));
    return positions.map((position, i) => {
      const kv = read[i];
      const record = kv === null || kv === undefined ? null : decodeKeyRecord(kv.value.toString('utf8'), position.id);
      // An entry whose key is gone (or carries another label) lists nothing.
      return { position, record: record !== null && record.label === position.label ? record : null };
    });
  }

  async walkKeys(visit: (page: readonly VersionedKey[]) => Promise<void> | void): Promise<void> {
    await visitPrefix(this.ns, KEY_PREFIX, this.pageSize, (kvs) =>
      visit(kvs.map((kv) => ({ record: decodeKeyRecord(kv.value.toString('utf8'), idOfKeyPath(kv.key)), revision: Number(kv.mod_revision) }))),
    );
  }

  async deleteKeys(keys: readonly VersionedKey[]): Promise<string[]> {
    const deleted: string[] = [];
    for (let i = 0; i < keys.length; i += DELETES_PER_TXN) {
      const chunk = keys.slice(i, i + DELETES_PER_TXN);
      if (await this.deleteIfUnchanged(chunk)) {
        deleted.push(...chunk.map((key) => key.record.id));
        continue;
      }
      // One of them changed or went meanwhile: each on its own.
      for (const key of chunk) if (await this.deleteIfUnchanged([key])) deleted.push(key.record.id);
    }
    return deleted;
  }

  private async deleteIfUnchanged(keys: readonly VersionedKey[]): Promise<boolean> {
    const [first, ...rest] = keys;
    if (first === undefined) return true;
    const txn = this.ns.if(paths.key(first.record.id), 'Mod', '==', first.revision);
    for (const key of rest) txn.and(paths.key(key.record.id), 'Mod', '==', key.revision);
    const result = await guard(txn.then(...keys.flatMap((key) => this.deleteOps(key.record))).commit());
    return result.succeeded;
  }

  async buildLabelIndex(): Promise<number | null> {
    if ((await guard(this.ns.get(LABEL_INDEX_MARKER).string())) !== null) return null;
    let written = 0;
    await visitPrefix(this.ns, KEY_PREFIX, this.pageSize, async (kvs) => {
      const labelled = kvs
        .map((kv) => decodeKeyRecord(kv.value.toString('utf8'), idOfKeyPath(kv.key)))
        .flatMap((record) => {
          const entry = labelIndexKey(record.label, record.id);
          return entry === null ? [] : [{ id: record.id, entry }];
        });
      // Keys written since the index exists have their entry already: read before writing.
      const present = await this.readMany(labelled.map(({ entry }) => entry));
      const missing = labelled.filter((_, i) => present[i] === null);
      for (let i = 0; i < missing.length; i += INDEX_PUTS_PER_TXN) {
        const chunk = missing.slice(i, i + INDEX_PUTS_PER_TXN);
        if (await this.putEntriesIfKeysExist(chunk)) {
          written += chunk.length;
          continue;
        }
        // A key went meanwhile: its entry must not outlive it, so each on its own.
        for (const one of chunk) if (await this.putEntriesIfKeysExist([one])) written++;
      }
    });
    // Replicas starting together may both build (the puts are the same); either marker will do.
    await guard(this.ns.put(LABEL_INDEX_MARKER).value(JSON.stringify({ builtAtMs: Date.now(), entries: written })).exec());
    return written;
  }

  private async putEntriesIfKeysExist(entries: readonly { id: string; entry: string }[]): Promise<boolean> {
    const [first, ...rest] = entries;
    if (first === undefined) return true;
    const txn = this.ns.if(paths.key(first.id), 'Version', '>', 0);
    for (const { id } of rest) txn.and(paths.key(id), 'Version', '>', 0);
    const result = await guard(txn.then(...entries.map(({ entry }) => this.ns.put(entry).value(''))).commit());
    return result.succeeded;
  }

  async updateKey(id: string, change: (current: KeyRecord) => KeyRecord): Promise<KeyRecord | null> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const response = await guard(this.ns.get(paths.key(id)).exec());
      const kv = response.kvs[0];
      if (kv === undefined) return null;
      const current = decodeKeyRecord(kv.value.toString('utf8'), id);
      const updated = change(current);
      if (updated === current) return current;
      const result = await guard(
        this.ns.if(paths.key(id), 'Mod', '==', kv.mod_revision).then(this.ns.put(paths.key(id)).value(encodeKeyRecord(updated))).commit(),
      );
      if (result.succeeded) return updated;
    }
    throw new OperatorError('conflict', `key ${id} is being changed concurrently; try again`);
  }

  async deleteKey(id: string): Promise<boolean> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const response = await guard(this.ns.get(paths.key(id)).exec());
      const kv = response.kvs[0];
      if (kv === undefined) return false;
      const record = decodeKeyRecord(kv.value.toString('utf8'), id);
      const result = await guard(this.ns.if(paths.key(id), 'Mod', '==', kv.mod_revision).then(...this.deleteOps(record)).commit());
      if (result.succeeded) return true;
    }
    throw new OperatorError('conflict', `key ${id} is being changed concurrently; try again`);
  }

  async putCredential(record: CredentialRecord): Promise<void> {
    await guard(this.ns.put(paths.credential(record.vendor)).value(JSON.stringify(record)).exec());
  }

  async getCredential(vendor: string): Promise<CredentialRecord | null> {
    return parseJson<CredentialRecord>(await guard(this.ns.get(paths.credential(vendor)).string()));
  }

  async createToken(record: TokenRecord): Promise<void> {
    const result = await guard(
      this.ns.if(paths.token(record.tokenHash), 'Create', '==', 0).then(this.ns.put(paths.token(record.tokenHash)).value(JSON.stringify(record))).commit(),
    );
    if (!result.succeeded) throw new OperatorError('conflict', 'token already exists');
  }

  async findTokenByHash(tokenHash: string): Promise<TokenRecord | null> {
    return parseJson<TokenRecord>(await guard(this.ns.get(paths.token(tokenHash)).string()));
  }

  async listTokens(): Promise<TokenRecord[]> {
    const { kvs } = await collectPrefix(this.ns, 'tokens/', this.pageSize);
    return kvs.map((kv) => JSON.parse(kv.value.toString('utf8')) as TokenRecord).sort((a, b) => a.createdAtMs - b.createdAtMs || a.id.localeCompare(b.id));
  }

  async deleteToken(id: string): Promise<TokenRecord | null> {
    // Tokens are few: find the record by id, then delete it only if it is still that record.
    const record = (await this.listTokens()).find((t) => t.id === id);
    if (record === undefined) return null;
    const path = paths.token(record.tokenHash);
    await guard(this.ns.if(path, 'Create', '>', 0).then(this.ns.delete().key(path)).commit());
    return record;
  }

  async loadSecrets(): Promise<SecretState> {
    const { kvs, revision } = await collectPrefix(this.ns, 'credentials/', this.pageSize);
    return { credentials: kvs.map((kv) => JSON.parse(kv.value.toString('utf8')) as CredentialRecord), revision };
  }

  /**
   * The policy watches run on a client of their own, closed as a whole to stop them: etcd may
   * cancel one watch of the pair (its resume point compacted away) and not the other, and
   * cancelling a watch etcd has already dropped never completes in the etcd3 client (or throws
   * outside any caller when etcd's answer races it). Closing the client ends both for certain.
   */
  async watchPolicyChanges(afterRevision: number, listener: (change: PolicyChange) => void, onError: (error: unknown) => void): Promise<() => Promise<void>> {
    const start = String(afterRevision + 1);
    const client = new Etcd3({ hosts: [...this.options.endpoints], dialTimeout: 3000 });
    const ns = client.namespace(this.options.prefix);
    let stopped = false;
    const failed = (error: unknown) => {
      if (!stopped) onError(error);
    };
    let keyWatcher;
    let credentialWatcher;
    try {
      keyWatcher = await guard(ns.watch().prefix('keys/').withPreviousKV().startRevision(start).create());
      credentialWatcher = await guard(ns.watch().prefix('credentials/').startRevision(start).create());
    } catch (error) {
      client.close();
      throw error;
    }
    keyWatcher.on('put', (kv) =>
      listener({ kind: 'key-put', record: decodeKeyRecord(kv.value.toString('utf8'), idOfKeyPath(kv.key)), created: kv.version === '1', revision: Number(kv.mod_revision) }),
    );
    keyWatcher.on('delete', (kv, previous) => {
      const keyHash = previous === undefined ? null : (decodeKeyRecord(previous.value.toString('utf8'), idOfKeyPath(kv.key)).keyHash ?? null);
      listener({ kind: 'key-delete', id: kv.key.toString('utf8').slice('keys/'.length), keyHash, revision: Number(kv.mod_revision) });
    });
    credentialWatcher.on('put', (kv) =>
      listener({ kind: 'credential-put', record: JSON.parse(kv.value.toString('utf8')) as CredentialRecord, revision: Number(kv.mod_revision) }),
    );
    keyWatcher.on('error', failed);
    credentialWatcher.on('error', failed);
    return async () => {
      stopped = true;
      client.close();
    };
  }

  async ping(): Promise<void> {
    await guard(this.ns.get('ping').string());
  }

  close(): void {
    this.client.close();
  }
}

/** The key id of a `keys/<id>` etcd key (namespace removed). */
function idOfKeyPath(key: Buffer): string {
  return key.toString('utf8').slice('keys/'.length);
}

function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

