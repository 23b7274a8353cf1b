/**
 * What the control plane's logic needs from storage. The etcd implementation is the real
 * one; every write is one etcd transaction, so replicas need no locks to stay consistent.
 */
import type { SealedSecret } from './crypto.js';
import type { KeyRecord } from './key-record.js';

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

/** A committed change to what data planes enforce. */
export type PolicyChange =
  | { readonly kind: 'key-put'; readonly record: KeyRecord; readonly revision: number }
  | { readonly kind: 'key-delete'; readonly id: string; readonly revision: number }
  | { readonly kind: 'credential-put'; readonly record: CredentialRecord; readonly revision: number };

export interface PolicyState {
  readonly keys: readonly KeyRecord[];
  readonly credentials: readonly CredentialRecord[];
  /** The store revision the state was read at; changes after it are watched. */
  readonly revision: number;
}

export interface KeyStore {
  /** Writes all records or none; fails if any id or hash already exists. */
  createKeys(records: readonly KeyRecord[]): Promise<void>;
  getKey(id: string): Promise<KeyRecord | null>;
  findKeyIdByHash(keyHash: string): Promise<string | null>;
  listKeys(): Promise<KeyRecord[]>;
  /** Applies `change` atomically (compare-and-swap, retried on a concurrent write). */
  updateKey(id: string, change: (current: KeyRecord) => KeyRecord): Promise<KeyRecord | null>;
  deleteKey(id: string): Promise<boolean>;

  putCredential(record: CredentialRecord): Promise<void>;
  getCredential(vendor: string): Promise<CredentialRecord | null>;

  createToken(record: TokenRecord): Promise<void>;
  findTokenByHash(tokenHash: string): Promise<TokenRecord | null>;
  listTokens(): Promise<TokenRecord[]>;
  /** Deletes the token with this id; returns what was deleted, or null when there is none. */
  deleteToken(id: string): Promise<TokenRecord | null>;

  /** Every key and credential, read at one revision. */
  loadPolicyState(): Promise<PolicyState>;
  /** Calls `listener` for each change committed after `afterRevision`, in commit order; resolves to a stop function. */
  watchPolicyChanges(afterRevision: number, listener: (change: PolicyChange) => void, onError: (error: unknown) => void): Promise<() => Promise<void>>;

  /** Resolves when the store answers; throws `unavailable` otherwise. */
  ping(): Promise<void>;
  close(): void;
}
