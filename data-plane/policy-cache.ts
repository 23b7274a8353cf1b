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
  private keyWaiters: (() => void)[] = [];
  revision = 0;

  /**
   * Resolves at the next key update (or after `timeoutMs`). A pipeline step that issues a key
   * and calls at once can beat the key's push to this data plane by a few milliseconds.
   */
  nextKeyUpdate(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.keyWaiters;
      function done() {
        clearTimeout(timer);
        resolve();
      }
      waiters.push(done);
    });
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
    for (const wake of this.keyWaiters.splice(0)) wake();
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
