/**
 * What data planes are told as it changes: the vendor secrets (decrypted; a handful), and every
 * change to an existing key (a revocation, a deletion) as it commits in etcd, followed through
 * one etcd watch. It holds no keys: data planes look keys up when first presented
 * (key-policies.ts), so a new key needs no broadcast, and what this replica remembers of keys
 * follows the same watch. Data-plane streams subscribe: the secrets first, then each change.
 */
import type { Logger } from '../core/logger.js';
import type { KeyPolicy, VendorSecret } from '../gen/keybrake/v1/dataplane.js';
import { openSecret } from './crypto.js';
import { toKeyPolicy, type KeyPolicies } from './key-policies.js';
import type { CredentialRecord, KeyStore, PolicyChange } from './store.js';

export type FeedEvent =
  /** The watch had to start again (changes may have been missed): streams send a new snapshot, and data planes look up again the keys they hold. */
  | { readonly kind: 'resync'; readonly snapshot: FeedSnapshot }
  | { readonly kind: 'key'; readonly policy: KeyPolicy; readonly revision: number }
  | { readonly kind: 'key-removed'; readonly id: string; readonly keyHash: string; readonly revision: number }
  | { readonly kind: 'secret'; readonly secret: VendorSecret; readonly revision: number };

export interface FeedSnapshot {
  readonly secrets: VendorSecret[];
  readonly revision: number;
}

export class PolicyFeed {
  private readonly secrets = new Map<string, VendorSecret>();
  private readonly subscribers = new Set<(event: FeedEvent) => void>();
  private revision = 0;
  private stopWatch: (() => Promise<void>) | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly store: KeyStore,
    private readonly policies: KeyPolicies,
    private readonly wrapKey: Buffer,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.follow();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    await this.stopWatch?.();
    this.subscribers.clear();
  }

  /** Reads the secrets and watches every change after the revision they were read at. */
  private async follow(): Promise<void> {
    const state = await this.store.loadSecrets();
    for (const record of state.credentials) this.putCredential(record);
    this.revision = state.revision;
    this.stopWatch = await this.store.watchPolicyChanges(state.revision, (change) => this.apply(change), (error) => this.lost(error));
  }

  /**
   * The watch ended (etcd cancels a watch whose resume point was compacted away, with an empty
   * reason, when its stream reconnects): changes may have been missed, so it starts again from a
   * fresh read, and every stream is told to resynchronise (a new snapshot; its data plane looks
   * up again each key it holds, which brings any revocation it missed).
   */
  private lost(error: unknown): void {
    if (this.stopped || this.restartTimer !== null) return;
    this.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'etcd policy watch ended; following again from a fresh read');
    this.scheduleRestart(100);
  }

  private scheduleRestart(delayMs: number): void {
    this.restartTimer = setTimeout(() => void this.restart(), delayMs);
  }

  private async restart(): Promise<void> {
    this.restartTimer = null;
    const previous = this.stopWatch;
    this.stopWatch = null;
    await previous?.().catch(() => {});
    try {
      await this.follow();
    } catch (failure) {
      this.logger.warn({ err: failure instanceof Error ? failure.message : String(failure) }, 'could not follow the etcd policy watch again; retrying');
      if (!this.stopped) this.scheduleRestart(1000);
      return;
    }
    this.policies.clear();
    const snapshot = this.snapshot();
    for (const subscriber of this.subscribers) subscriber({ kind: 'resync', snapshot });
  }

  snapshot(): FeedSnapshot {
    return { secrets: [...this.secrets.values()], revision: this.revision };
  }

  /** Subscribes to changes after the snapshot taken in the same tick; returns the unsubscribe function. */
  subscribe(listener: (event: FeedEvent) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  private apply(change: PolicyChange): void {
    this.revision = Math.max(this.revision, change.revision);
    this.policies.apply(change);
    let event: FeedEvent | null = null;
    if (change.kind === 'key-put') {
      // A new key reaches no data plane this way: none can hold it before it is presented.
      if (change.created) return;
      event = { kind: 'key', policy: toKeyPolicy(change.record, change.revision), revision: change.revision };
    } else if (change.kind === 'key-delete') {
      if (change.keyHash !== null) event = { kind: 'key-removed', id: change.id, keyHash: change.keyHash, revision: change.revision };
    } else {
      const secret = this.putCredential(change.record);
      if (secret !== null) event = { kind: 'secret', secret, revision: change.revision };
    }
    if (event === null) return;
    for (const subscriber of this.subscribers) subscriber(event);
  }

  private putCredential(record: CredentialRecord): VendorSecret | null {
    try {
      const plaintext = openSecret(this.wrapKey, record.sealed);
      const { secret, account_sid } = JSON.parse(plaintext.toString('utf8')) as { secret: string; account_sid: string };
      plaintext.fill(0);
      const vendorSecret: VendorSecret = { vendor: record.vendor, secret, accountSid: account_sid };
      this.secrets.set(record.vendor, vendorSecret);
      return vendorSecret;
    } catch (error) {
      // A credential sealed under another master key cannot be served; say so, do not crash.
      this.logger.error({ vendor: record.vendor, err: error instanceof Error ? error.message : String(error) }, 'cannot open vendor credential');
      return null;
    }
  }
}
