/**
 * What data planes enforce, kept current from etcd: every key policy and every vendor secret
 * (decrypted), loaded once at one revision and then followed through an etcd watch. Data-plane
 * streams subscribe to it: a snapshot first, then each change as it commits.
 */
import type { Logger } from '../core/logger.js';
import type { KeyPolicy, VendorSecret } from '../gen/keybrake/v1/dataplane.js';
import { openSecret } from './crypto.js';
import type { KeyRecord } from './key-record.js';
import type { CredentialRecord, KeyStore, PolicyChange } from './store.js';

export type FeedEvent =
  | { readonly kind: 'key'; readonly policy: KeyPolicy; readonly revision: number }
  | { readonly kind: 'key-removed'; readonly id: string; readonly keyHash: string; readonly revision: number }
  | { readonly kind: 'secret'; readonly secret: VendorSecret; readonly revision: number };

export interface FeedSnapshot {
  readonly keys: KeyPolicy[];
  readonly secrets: VendorSecret[];
  readonly revision: number;
}

export class PolicyFeed {
  private readonly keys = new Map<string, KeyPolicy>();
  private readonly secrets = new Map<string, VendorSecret>();
  private readonly subscribers = new Set<(event: FeedEvent) => void>();
  private revision = 0;
  private stopWatch: (() => Promise<void>) | null = null;

  constructor(
    private readonly store: KeyStore,
    private readonly wrapKey: Buffer,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const state = await this.store.loadPolicyState();
    for (const record of state.keys) this.keys.set(record.id, toKeyPolicy(record));
    for (const record of state.credentials) this.putCredential(record);
    this.revision = state.revision;
    this.stopWatch = await this.store.watchPolicyChanges(state.revision, (change) => this.apply(change), (error) => {
      this.logger.error({ err: error }, 'etcd watch failed; data planes keep their last policy until it is restored');
    });
  }

  async stop(): Promise<void> {
    await this.stopWatch?.();
    this.subscribers.clear();
  }

  key(id: string): KeyPolicy | undefined {
    return this.keys.get(id);
  }

  snapshot(): FeedSnapshot {
    return { keys: [...this.keys.values()], secrets: [...this.secrets.values()], revision: this.revision };
  }

  /** Subscribes to changes after the snapshot taken in the same tick; returns the unsubscribe function. */
  subscribe(listener: (event: FeedEvent) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  private apply(change: PolicyChange): void {
    this.revision = Math.max(this.revision, change.revision);
    let event: FeedEvent | null = null;
    if (change.kind === 'key-put') {
      const policy = toKeyPolicy(change.record);
      this.keys.set(policy.id, policy);
      event = { kind: 'key', policy, revision: change.revision };
    } else if (change.kind === 'key-delete') {
      const removed = this.keys.get(change.id);
      this.keys.delete(change.id);
      if (removed !== undefined) event = { kind: 'key-removed', id: change.id, keyHash: removed.keyHash, revision: change.revision };
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

export function toKeyPolicy(record: KeyRecord): KeyPolicy {
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
  };
}
