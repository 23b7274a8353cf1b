/**
 * What this data plane knows, as control planes told it: the policies of the vault keys it has
 * been presented (looked up by keyed hash the first time, then kept while in use), vendor
 * credentials, the pepper, and when a control plane was last heard from. It holds no authority
 * of its own, and nothing in it grows with the whole keyspace: only with the keys this data
 * plane serves. Pure state; the lookups it asks for are sent by the control-plane link.
 *
 * Ordering: every policy carries the etcd revision it was read at. A change pushed for a key
 * (a revocation) is kept a while even for a key not held here, so a lookup answered from an
 * older read cannot undo it; a key looked up after its revocation arrives revoked.
 */
import { createHmac } from 'node:crypto';

import { GenerationalMap } from '../core/generational-map.js';
import { TokenBucket } from '../core/token-bucket.js';
import { parseEndpointPattern, type EndpointPattern } from '../core/endpoint-pattern.js';
import { hasValidTag, isWellFormedSecret, vaultKeyTagKey } from '../core/secret-format.js';
import { isVendor, type Vendor } from '../core/vendors.js';
import type { KeyLookupResult, KeyPolicy, PolicySnapshot, VendorSecret } from '../gen/keybrake/v1/dataplane.js';
import type { VendorCredential } from './vendors/index.js';

export interface CachedKey {
  readonly policy: KeyPolicy;
  readonly vendor: Vendor;
  readonly allowlist: readonly EndpointPattern[];
  /** Monotonic ms of its last call here: keys idle for long leave memory. */
  lastUsedMs: number;
}

/** What a presented vault key is, as far as this data plane can tell now. */
export type Resolution =
  | { readonly kind: 'key'; readonly key: CachedKey }
  /** Not a Keybrake vault key (prefix, length or checksum). */
  | { readonly kind: 'malformed' }
  /** No such key (looked up, or forged: its tag is not one a control plane made). */
  | { readonly kind: 'unknown' }
  /** Being looked up: the answer is a key, 'unknown', or 'unavailable' (no control plane answered). */
  | { readonly kind: 'pending'; readonly answer: Promise<CachedKey | 'unknown' | 'unavailable'> };

export interface PolicyCacheOptions {
  /** Sends a lookup for these hashes to a control plane; false when no stream is up. */
  readonly sendLookup?: (keyHashes: readonly string[]) => boolean;
  /** A key unused this long leaves memory (it is looked up again if presented again). */
  readonly idleMs?: number;
  /** How long a call waits for a lookup's answer before failing closed. */
  readonly lookupTimeoutMs?: number;
}

/** Vault keys whose hash is remembered: the busy ones (keys are short-lived). */
const RECENT_HASHES = 10_000;
/** Hashes known to name no key (deleted, or never issued): answered without asking again. */
const UNKNOWN_HASHES = 100_000;
/** Changes pushed for keys not held here, kept long enough to order any lookup in flight. */
const RECENT_CHANGES = 10_000;
/** Lookups waiting at once; more are refused at once (a flood must not queue without bound). */
const MAX_PENDING_LOOKUPS = 10_000;
/** Hashes per lookup message (the control plane takes up to 1,000). */
const LOOKUP_BATCH = 500;
/**
 * Keys issued before vault keys carried a tag (core/secret-format.ts) cannot be told from forged
 * ones: at most this many such lookups per second leave this data plane (they end within 90
 * days, the longest a key lives).
 */
const UNTAGGED_LOOKUPS_PER_SECOND = 20;

type PendingAnswer = CachedKey | 'unknown' | 'unavailable';

interface PendingLookup {
  readonly promise: Promise<PendingAnswer>;
  readonly resolve: (answer: PendingAnswer) => void;
  readonly timer: NodeJS.Timeout;
}

/** A change pushed for a key id: its new policy, or its removal. */
type RecentChange = { readonly revision: number; readonly policy: KeyPolicy | null };

export class PolicyCache {
  private readonly keysByHash = new Map<string, CachedKey>();
  private readonly hashById = new Map<string, string>();
  private credentials = new Map<Vendor, VendorCredential>();
  private pepper: Buffer | null = null;
  private tagKey: Buffer | null = null;
  /** Vault key → hash for keys that matched a policy: a busy key costs one HMAC, not one per call. */
  private readonly recentHashes = new GenerationalMap<string>(RECENT_HASHES);
  private readonly unknownHashes = new GenerationalMap<true>(UNKNOWN_HASHES);
  private readonly recentChanges = new GenerationalMap<RecentChange>(RECENT_CHANGES);
  private readonly pending = new Map<string, PendingLookup>();
  private unsent: string[] = [];
  private flushScheduled = false;
  private readonly untaggedLookups = new TokenBucket(UNTAGGED_LOOKUPS_PER_SECOND, UNTAGGED_LOOKUPS_PER_SECOND);
  private lastHeardMs: number | null = null;
  private readonly idleMs: number;
  private readonly lookupTimeoutMs: number;
  revision = 0;

  constructor(private readonly options: PolicyCacheOptions = {}) {
    this.idleMs = options.idleMs ?? 10 * 60_000;
    this.lookupTimeoutMs = options.lookupTimeoutMs ?? 2000;
  }

  /** A new stream's welcome: the pepper. A different pepper makes every hash here meaningless. */
  welcome(pepper: Buffer, nowMs: number): void {
    if (this.pepper === null || !this.pepper.equals(pepper)) {
      this.recentHashes.clear();
      this.unknownHashes.clear();
      this.keysByHash.clear();
      this.hashById.clear();
    }
    this.pepper = Buffer.from(pepper);
    this.tagKey = vaultKeyTagKey(this.pepper);
    this.heard(nowMs);
  }

  /**
   * A stream's snapshot: the vendor secrets. Changes may have been missed while no stream was
   * up, so every key held here is looked up again (and lookups sent on the old stream go again).
   */
  applySnapshot(snapshot: PolicySnapshot, nowMs: number): void {
    const credentials = new Map<Vendor, VendorCredential>();
    for (const secret of snapshot.secrets) if (isVendor(secret.vendor)) credentials.set(secret.vendor, toCredential(secret));
    this.credentials = credentials;
    this.revision = Math.max(this.revision, snapshot.revision);
    this.heard(nowMs);
    this.unsent = [...new Set([...this.keysByHash.keys(), ...this.pending.keys()])];
    this.scheduleFlush();
  }

  /** A change to an existing key (revocation, new expiry, …), pushed as it committed. */
  applyKey(policy: KeyPolicy, revision: number, nowMs: number): void {
    this.advance(revision, nowMs);
    this.recentChanges.set(policy.id, { revision, policy });
    const hash = this.hashById.get(policy.id);
    if (hash === undefined) return;
    const held = this.keysByHash.get(hash);
    if (held !== undefined && held.policy.revision > revision) return;
    this.hold(policy, held?.lastUsedMs ?? nowMs);
  }

  applyKeyRemoval(id: string, keyHash: string, revision: number, nowMs: number): void {
    this.advance(revision, nowMs);
    this.recentChanges.set(id, { revision, policy: null });
    this.forget(id);
    this.unknownHashes.set(keyHash, true);
  }

  /** A control plane's answer to lookups: each key held from now on, or known unknown. */
  applyLookupResult(result: KeyLookupResult, nowMs: number): void {
    this.heard(nowMs);
    for (const fetched of result.keys) {
      // A change pushed after the read this answer came from wins.
      const change = this.recentChanges.get(fetched.id);
      const policy = change !== undefined && change.revision >= fetched.revision ? change.policy : fetched;
      const hash = fetched.keyHash;
      if (policy === null) {
        this.unknownHashes.set(hash, true);
        this.answer(hash, 'unknown');
        continue;
      }
      const held = this.keysByHash.get(hash);
      const key = held !== undefined && held.policy.revision > policy.revision ? held : this.hold(policy, held?.lastUsedMs ?? nowMs);
      this.answer(hash, key ?? 'unknown');
    }
    for (const hash of result.unknownKeyHashes) {
      this.unknownHashes.set(hash, true);
      const held = this.keysByHash.get(hash);
      if (held !== undefined) this.forget(held.policy.id);
      this.answer(hash, 'unknown');
    }
    for (const hash of result.failedKeyHashes) this.answer(hash, 'unavailable');
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

  /**
   * What a presented vault key is. Synchronous for a key held here (the common case) and for
   * one known not to exist; otherwise it is looked up (batched with the lookups of the same
   * turn of the event loop), and the answer comes as a promise.
   */
  resolve(vaultKey: string, nowMs: number): Resolution {
    if (this.pepper === null || this.tagKey === null) return { kind: 'unknown' };
    const remembered = this.recentHashes.get(vaultKey);
    if (remembered !== undefined) {
      const key = this.keysByHash.get(remembered);
      if (key !== undefined) {
        key.lastUsedMs = nowMs;
        return { kind: 'key', key };
      }
    }
    const hash = createHmac('sha256', this.pepper).update(vaultKey, 'utf8').digest('hex');
    const held = this.keysByHash.get(hash);
    if (held !== undefined) {
      held.lastUsedMs = nowMs;
      this.recentHashes.set(vaultKey, hash);
      return { kind: 'key', key: held };
    }
    // Only a key that matched nothing is checked for typos: a known key is well formed.
    if (!isWellFormedSecret(vaultKey, 'vaultKey')) return { kind: 'malformed' };
    if (this.unknownHashes.has(hash)) return { kind: 'unknown' };
    const waiting = this.pending.get(hash);
    if (waiting !== undefined) return { kind: 'pending', answer: waiting.promise };
    if (!hasValidTag(vaultKey, this.tagKey) && !this.untaggedLookups.take(nowMs)) return { kind: 'unknown' };
    if (this.pending.size >= MAX_PENDING_LOOKUPS) return { kind: 'pending', answer: Promise.resolve('unavailable') };
    return { kind: 'pending', answer: this.lookUp(hash) };
  }

  /** The key held here for a presented vault key, if any: no lookup, no use recorded. */
  peek(vaultKey: string): CachedKey | null {
    if (this.pepper === null) return null;
    const hash = this.recentHashes.get(vaultKey) ?? createHmac('sha256', this.pepper).update(vaultKey, 'utf8').digest('hex');
    return this.keysByHash.get(hash) ?? null;
  }

  credential(vendor: Vendor): VendorCredential | null {
    return this.credentials.get(vendor) ?? null;
  }

  /** Keys held here. */
  get keyCount(): number {
    return this.keysByHash.size;
  }

  get pendingLookups(): number {
    return this.pending.size;
  }

  /** Lets keys unused for `idleMs` leave memory; returns how many left. */
  sweepIdle(nowMs: number): number {
    let dropped = 0;
    for (const key of [...this.keysByHash.values()]) {
      if (nowMs - key.lastUsedMs < this.idleMs) continue;
      this.forget(key.policy.id);
      dropped++;
    }
    return dropped;
  }

  private lookUp(hash: string): Promise<PendingAnswer> {
    let resolve!: (answer: PendingAnswer) => void;
    const promise = new Promise<PendingAnswer>((done) => (resolve = done));
    const timer = setTimeout(() => this.answer(hash, 'unavailable'), this.lookupTimeoutMs);
    this.pending.set(hash, { promise, resolve, timer });
    this.unsent.push(hash);
    this.scheduleFlush();
    return promise;
  }

  /** The lookups asked for in this turn of the event loop go out together. */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.unsent.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const hashes = this.unsent;
      this.unsent = [];
      for (let i = 0; i < hashes.length; i += LOOKUP_BATCH) {
        const batch = hashes.slice(i, i + LOOKUP_BATCH);
        if (this.options.sendLookup?.(batch) !== true) {
          // No stream: the calls waiting fail closed now; held keys are looked up on the next snapshot.
          for (const hash of batch) this.answer(hash, 'unavailable');
        }
      }
    });
  }

  private answer(hash: string, answer: PendingAnswer): void {
    const waiting = this.pending.get(hash);
    if (waiting === undefined) return;
    this.pending.delete(hash);
    clearTimeout(waiting.timer);
    waiting.resolve(answer);
  }

  /** Holds a policy (replacing any earlier one of the key); null when it no longer parses (fail closed). */
  private hold(policy: KeyPolicy, lastUsedMs: number): CachedKey | null {
    this.forget(policy.id);
    const compiled = compile(policy, lastUsedMs);
    if (compiled === null) return null;
    this.keysByHash.set(policy.keyHash, compiled);
    this.hashById.set(policy.id, policy.keyHash);
    return compiled;
  }

  private forget(id: string): void {
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
function compile(policy: KeyPolicy, lastUsedMs: number): CachedKey | null {
  if (!isVendor(policy.vendor)) return null;
  const vendor = policy.vendor;
  try {
    const allowlist = policy.allowedEndpoints.map((text, i) => parseEndpointPattern(text, vendor, `allowed_endpoints[${i}]`));
    return { policy, vendor, allowlist, lastUsedMs };
  } catch {
    return null;
  }
}

function toCredential(secret: VendorSecret): VendorCredential {
  return { secret: secret.secret, accountSid: secret.accountSid };
}
