/**
 * What the control plane's logic needs from storage. The etcd implementation is the real
 * one; every write is one etcd transaction, so replicas need no locks to stay consistent.
 */
import type { SealedSecret } from './crypto.js';
import type { KeyRecord } from './key-record.js';
import type { KeyPosition } from './key-listing.js';

export type TokenRoleName = 'admin' | 'issuer' | 'auditor';

export interface TokenRecord {
  readonly id: string;
  readonly tokenHash: string;
  readonly name: string;
  readonly role: TokenRoleName;
  readonly createdAtMs: number;
}

export interface CredentialRecord {
  readonly vendor: string;
  readonly accountSid: string;
  readonly updatedAtMs: number;
  readonly sealed: SealedSecret;
}

/**
 * A committed change to what data planes enforce. `created` tells a new key (which no data plane
 * can hold yet: they load keys when first presented) from a change to an existing one.
 */
export type PolicyChange =
  | { readonly kind: 'key-put'; readonly record: KeyRecord; readonly created: boolean; readonly revision: number }
  | { readonly kind: 'key-delete'; readonly id: string; readonly keyHash: string | null; readonly revision: number }
  | { readonly kind: 'credential-put'; readonly record: CredentialRecord; readonly revision: number };

export interface SecretState {
  readonly credentials: readonly CredentialRecord[];
  /** The store revision the state was read at; changes after it are watched. */
  readonly revision: number;
}

/** A key record and the store revision it was last written at (what orders it against changes). */
export interface VersionedKey {
  readonly record: KeyRecord;
  readonly revision: number;
}

/** One page of a listing (key-listing.ts says what each filter walks, in which order). */
export interface KeyListQuery {
  /** Exact label; '' means any. */
  readonly label: string;
  /** Label prefix; '' means any. */
  readonly labelPrefix: string;
  /** Resume after this position (a cursor); null starts at the beginning. */
  readonly after: KeyPosition | null;
  /** At most this many records in the page. */
  readonly limit: number;
  /** At most this many keys looked at (filters such as vendor may skip most): bounds one request's work. */
  readonly maxExamined: number;
  /** Which of the keys looked at belong in the page (vendor, status). */
  readonly accept: (record: KeyRecord) => boolean;
}

export interface KeyListPage {
  readonly records: KeyRecord[];
  /** Where the next page starts; null when the walk reached its end. */
  readonly next: KeyPosition | null;
}

export interface KeyStore {
  /** Writes all records or none; fails if any id or hash already exists. */
  createKeys(records: readonly KeyRecord[]): Promise<void>;
  getKey(id: string): Promise<KeyRecord | null>;
  findKeyIdByHash(keyHash: string): Promise<string | null>;
  /** The keys with these keyed hashes (a data plane's first sight of them); unknown hashes are absent. A few reads for any number. */
  findKeysByHash(keyHashes: readonly string[]): Promise<Map<string, VersionedKey>>;
  /** These keys' records, read in batches (unknown ids are absent). */
  getKeys(ids: readonly string[]): Promise<Map<string, KeyRecord>>;
  /** One page of a listing, from the label index or `keys/`: never a read of the whole keyspace. */
  listKeyPage(query: KeyListQuery): Promise<KeyListPage>;
  /** Every key, a page at a time (newest first by id); the visitor runs before the next page is read. */
  walkKeys(visit: (page: readonly VersionedKey[]) => Promise<void> | void): Promise<void>;
  /** Deletes these keys (with their index entries) if each is still at its revision, in batched transactions; returns the ids deleted. */
  deleteKeys(keys: readonly VersionedKey[]): Promise<string[]>;
  /**
   * Writes the label index entries of keys written before the index existed (a paged walk),
   * once per deployment: returns null when a marker says it was done, else the entries written.
   */
  buildLabelIndex(): Promise<number | null>;
  /** Applies `change` atomically (compare-and-swap, retried on a concurrent write). */
  updateKey(id: string, change: (current: KeyRecord) => KeyRecord): Promise<KeyRecord | null>;
  deleteKey(id: string): Promise<boolean>;

  putCredential(record: CredentialRecord): Promise<void>;
  getCredential(vendor: string): Promise<CredentialRecord | null>;

  createToken(record: TokenRecord): Promise<void>;
  findTokenByHash(tokenHash: string): Promise<TokenRecord | null>;
  /** Every operator token (a handful, read in pages), oldest first. */
  listTokens(): Promise<TokenRecord[]>;
  /** Deletes the token with this id; returns what was deleted, or null when there is none. */
  deleteToken(id: string): Promise<TokenRecord | null>;

  /** Every vendor credential (a handful), and the revision they were read at. */
  loadSecrets(): Promise<SecretState>;
  /** Calls `listener` for each change committed after `afterRevision`, in commit order; resolves to a stop function. */
  watchPolicyChanges(afterRevision: number, listener: (change: PolicyChange) => void, onError: (error: unknown) => void): Promise<() => Promise<void>>;

  /** Resolves when the store answers; throws `unavailable` otherwise. */
  ping(): Promise<void>;
  close(): void;
}
