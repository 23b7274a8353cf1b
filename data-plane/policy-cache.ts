/**
 * What this data plane knows, exactly as the control plane pushed it: key policies by keyed
 * hash, vendor credentials, the pepper, and when a control plane was last heard from. It
 * holds no authority of its own. Pure state, no I/O.
 */
import { createHmac } from 'node:crypto';

import { parseEndpointPattern, type EndpointPattern } from '../core/endpoint-pattern.js';
import { isVendor, type Vendor } from '../core/vendors.js';
import type { KeyPolicy, PolicySnapshot, VendorSecret } from '../gen/keybrake/v1/dataplane.js';
import { GenerationalMap } from './generational-map.js';
import type { VendorCredential } from './vendors/index.js';

export interface CachedKey {
  readonly policy: KeyPolicy;
  readonly vendor: Vendor;
  readonly allowlist: readonly EndpointPattern[];
}

/** Calls waiting at once for a key that may be on its way; more do not wait. */
const MAX_KEY_WAITERS = 1000;

/** Vault keys whose hash is remembered: the busy ones (keys are short-lived). */
const RECENT_HASHES = 10_000;

export class PolicyCache {
  private keysByHash = new Map<string, CachedKey>();
  private hashById = new Map<string, string>();
  private credentials = new Map<Vendor, VendorCredential>();
  private pepper: Buffer | null = null;
  /**
   * Keyed hashes of vault keys presented lately, so that a busy key costs one HMAC, not one per
   * call. Only keys that matched a policy are remembered (so unknown keys cannot flood it), and
   * only their hash: a revocation removes the policy, and the next lookup misses.
   */
  private readonly recentHashes = new GenerationalMap<string>(RECENT_HASHES);
  private lastHeardMs: number | null = null;
  private readonly keyWaiters = new Set<() => void>();
  revision = 0;

  /**
   * Resolves at the next key update (or after `timeoutMs`). A pipeline step that issues a key
   * and calls at once can beat the key's push to this data plane by a few milliseconds. A waiter
   * that times out leaves nothing behind; past MAX_KEY_WAITERS at once (a flood of unknown
   * keys) a call does not wait at all.
   */
  nextKeyUpdate(timeoutMs: number): Promise<void> {
    if (this.keyWaiters.size >= MAX_KEY_WAITERS) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.keyWaiters;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      waiters.add(done);
    });
  }

  get keyWaiterCount(): number {
    return this.keyWaiters.size;
  }

  /** A new stream's welcome: the pepper. Nothing is served until a snapshot follows. */
  welcome(pepper: Buffer, nowMs: number): void {
    if (this.pepper === null || !this.pepper.equals(pepper)) this.recentHashes.clear();
    this.pepper = Buffer.from(pepper);
    this.heard(nowMs);
  }

  applySnapshot(snapshot: PolicySnapshot, nowMs: number): void {
    const keysByHash = new Map<string, CachedKey>();
    const hashById = new Map<string, string>();
    for (const policy of snapshot.keys) {
      const cached = compile(policy);
      if (cached === null) continue;
      keysByHash.set(policy.keyHash, cached);
      hashById.set(policy.id, policy.keyHash);
    }
    const credentials = new Map<Vendor, VendorCredential>();
    for (const secret of snapshot.secrets) if (isVendor(secret.vendor)) credentials.set(secret.vendor, toCredential(secret));
    this.keysByHash = keysByHash;
    this.hashById = hashById;
    this.credentials = credentials;
    this.revision = snapshot.revision;
    this.heard(nowMs);
  }

  applyKey(policy: KeyPolicy, revision: number, nowMs: number): void {
    this.removeKey(policy.id);
    const cached = compile(policy);
    if (cached !== null) {
      this.keysByHash.set(policy.keyHash, cached);
      this.hashById.set(policy.id, policy.keyHash);
    }
    this.advance(revision, nowMs);
    for (const wake of [...this.keyWaiters]) wake();
  }

  applyKeyRemoval(id: string, revision: number, nowMs: number): void {
    this.removeKey(id);
    this.advance(revision, nowMs);
  }

  applySecret(secret: VendorSecret, revision: number, nowMs: number): void {
    if (isVendor(secret.vendor)) this.credentials.set(secret.vendor, toCredential(secret));
    this.advance(revision, nowMs);
  }

  heard(nowMs: number): void {
    this.lastHeardMs = nowMs;
  }

  /** Milliseconds since a control plane was last heard from; Infinity before the first. */
  silenceMs(nowMs: number): number {
    return this.lastHeardMs === null || this.pepper === null ? Number.POSITIVE_INFINITY : nowMs - this.lastHeardMs;
  }

  hasPolicy(): boolean {
    return this.pepper !== null;
  }

  /** The key a presented vault key stands for, or null. */
  lookup(vaultKey: string): CachedKey | null {
    if (this.pepper === null) return null;
    const remembered = this.recentHashes.get(vaultKey);
    if (remembered !== undefined) return this.keysByHash.get(remembered) ?? null;
    const hash = createHmac('sha256', this.pepper).update(vaultKey, 'utf8').digest('hex');
    const key = this.keysByHash.get(hash) ?? null;
    if (key !== null) this.recentHashes.set(vaultKey, hash);
    return key;
  }

  credential(vendor: Vendor): VendorCredential | null {
    return this.credentials.get(vendor) ?? null;
  }

  get keyCount(): number {
    return this.keysByHash.size;
  }

  private removeKey(id: string): void {
    const hash = this.hashById.get(id);
    if (hash === undefined) return;
    this.keysByHash.delete(hash);
    this.hashById.delete(id);
  }

  private advance(revision: number, nowMs: number): void {
    this.revision = Math.max(this.revision, revision);
    this.heard(nowMs);
  }
}

/** A policy the control plane validated; one that no longer parses is dropped (fail closed). */
function compile(policy: KeyPolicy): CachedKey | null {
  if (!isVendor(policy.vendor)) return null;
  const vendor = policy.vendor;
  try {
    const allowlist = policy.allowedEndpoints.map((text, i) => parseEndpointPattern(text, vendor, `allowed_endpoints[${i}]`));
    return { policy, vendor, allowlist };
  } catch {
    return null;
  }
}

function toCredential(secret: VendorSecret): VendorCredential {
  return { secret: secret.secret, accountSid: secret.accountSid };
}
