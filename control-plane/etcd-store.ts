import { Etcd3, type Namespace } from 'etcd3';

import { OperatorError } from '../core/operator-error.js';
import { guard } from './etcd-guard.js';
import type { KeyRecord } from './key-record.js';
import type { CredentialRecord, KeyStore, PolicyChange, PolicyState, TokenRecord } from './store.js';

export interface EtcdStoreOptions {
  readonly endpoints: readonly string[];
  /** Every key Keybrake writes lives under this prefix (default "/keybrake/"). */
  readonly prefix: string;
}

/** etcd's default --max-txn-ops is 128: a key takes two puts and two compares. */
const KEYS_PER_TXN = 64;
const PARALLEL_TXNS = 16;
const CAS_ATTEMPTS = 8;

const paths = {
  key: (id: string) => `keys/${id}`,
  keyHash: (hash: string) => `key-hashes/${hash}`,
  token: (hash: string) => `tokens/${hash}`,
  credential: (vendor: string) => `credentials/${vendor}`,
};

export class EtcdStore implements KeyStore {
  private readonly client: Etcd3;
  private readonly ns: Namespace;

  constructor(options: EtcdStoreOptions) {
    this.client = new Etcd3({ hosts: [...options.endpoints], dialTimeout: 3000 });
    this.ns = this.client.namespace(options.prefix);
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
    txn.then(...chunk.flatMap((record) => [
      this.ns.put(paths.key(record.id)).value(JSON.stringify(record)),
      this.ns.put(paths.keyHash(record.keyHash)).value(record.id),
    ]));
    const result = await guard(txn.commit());
    if (!result.succeeded) throw new OperatorError('conflict', 'a key id or key hash already exists; nothing was issued');
  }

  private async deleteChunk(chunk: readonly KeyRecord[]): Promise<void> {
    await this.ns.if(paths.key(chunk[0]!.id), 'Version', '>', -1)
      .then(...chunk.flatMap((r) => [this.ns.delete().key(paths.key(r.id)), this.ns.delete().key(paths.keyHash(r.keyHash))]))
      .commit();
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    return parseJson<KeyRecord>(await guard(this.ns.get(paths.key(id)).string()));
  }

  async findKeyIdByHash(keyHash: string): Promise<string | null> {
    return guard(this.ns.get(paths.keyHash(keyHash)).string());
  }

  async listKeys(): Promise<KeyRecord[]> {
    const all = await guard(this.ns.getAll().prefix('keys/').strings());
    return Object.values(all).map((text) => JSON.parse(text) as KeyRecord);
  }

  async updateKey(id: string, change: (current: KeyRecord) => KeyRecord): Promise<KeyRecord | null> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const response = await guard(this.ns.get(paths.key(id)).exec());
      const kv = response.kvs[0];
      if (kv === undefined) return null;
      const current = JSON.parse(kv.value.toString('utf8')) as KeyRecord;
      const updated = change(current);
      if (updated === current) return current;
      const result = await guard(
        this.ns.if(paths.key(id), 'Mod', '==', kv.mod_revision).then(this.ns.put(paths.key(id)).value(JSON.stringify(updated))).commit(),
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
      const record = JSON.parse(kv.value.toString('utf8')) as KeyRecord;
      const result = await guard(
        this.ns.if(paths.key(id), 'Mod', '==', kv.mod_revision)
          .then(this.ns.delete().key(paths.key(id)), this.ns.delete().key(paths.keyHash(record.keyHash)))
          .commit(),
      );
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
    const values = await guard(this.ns.getAll().prefix('tokens/').strings());
    return Object.values(values).map((text) => JSON.parse(text) as TokenRecord).sort((a, b) => a.createdAtMs - b.createdAtMs || a.id.localeCompare(b.id));
  }

  async deleteToken(id: string): Promise<TokenRecord | null> {
    // Tokens are few: find the record by id, then delete it only if it is still that record.
    const record = (await this.listTokens()).find((t) => t.id === id);
    if (record === undefined) return null;
    const path = paths.token(record.tokenHash);
    await guard(this.ns.if(path, 'Create', '>', 0).then(this.ns.delete().key(path)).commit());
    return record;
  }

  async loadPolicyState(): Promise<PolicyState> {
    // One range over the whole namespace: keys and credentials at a single revision.
    const response = await guard(this.ns.getAll().prefix('').exec());
    const keys: KeyRecord[] = [];
    const credentials: CredentialRecord[] = [];
    for (const kv of response.kvs) {
      const key = kv.key.toString('utf8');
      if (key.startsWith('keys/')) keys.push(JSON.parse(kv.value.toString('utf8')) as KeyRecord);
      else if (key.startsWith('credentials/')) credentials.push(JSON.parse(kv.value.toString('utf8')) as CredentialRecord);
    }
    return { keys, credentials, revision: Number(response.header.revision) };
  }

  async watchPolicyChanges(afterRevision: number, listener: (change: PolicyChange) => void, onError: (error: unknown) => void): Promise<() => Promise<void>> {
    const start = String(afterRevision + 1);
    const keyWatcher = await guard(this.ns.watch().prefix('keys/').startRevision(start).create());
    const credentialWatcher = await guard(this.ns.watch().prefix('credentials/').startRevision(start).create());
    keyWatcher.on('put', (kv) => listener({ kind: 'key-put', record: JSON.parse(kv.value.toString('utf8')) as KeyRecord, revision: Number(kv.mod_revision) }));
    keyWatcher.on('delete', (kv) => listener({ kind: 'key-delete', id: kv.key.toString('utf8').slice('keys/'.length), revision: Number(kv.mod_revision) }));
    credentialWatcher.on('put', (kv) =>
      listener({ kind: 'credential-put', record: JSON.parse(kv.value.toString('utf8')) as CredentialRecord, revision: Number(kv.mod_revision) }),
    );
    keyWatcher.on('error', onError);
    credentialWatcher.on('error', onError);
    return async () => {
      await Promise.allSettled([keyWatcher.cancel(), credentialWatcher.cancel()]);
    };
  }

  async ping(): Promise<void> {
    await guard(this.ns.get('ping').string());
  }

  close(): void {
    this.client.close();
  }
}

function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

