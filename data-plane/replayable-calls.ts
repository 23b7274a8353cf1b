/**
 * Stripe calls this data plane saw succeed (2xx, not themselves replays) under an
 * Idempotency-Key. Stripe keeps an idempotency key's result for at least 24 hours and answers a
 * repeat from it: the same answer, no money moved (or, with other parameters, an idempotency
 * error, still no money moved). So a repeat of such a call, on the same vault key and the same
 * Stripe credential, may go through when the cap has no room left for it: the step that retries
 * or resumes gets its original charge back instead of 429. It is the one case in which the cap
 * relies on the vendor's word rather than on a reservation; the proxy checks the answer says
 * `Idempotent-Replayed: true` and logs it as an error if not.
 */
import { GenerationalMap } from '../core/generational-map.js';
import type { VendorCredential } from './vendors/index.js';

/** Well inside Stripe's "at least 24 hours". */
const REMEMBERED_FOR_MS = 23 * 3_600_000;
/** The latest calls only: a retry comes seconds or minutes later, and a large map of old entries costs GC pauses. */
const DEFAULT_CAPACITY = 40_000;

export class ReplayableCalls {
  /** Entry id → when the call succeeded. One number per entry: this is written on every priced call. */
  private readonly calls: GenerationalMap<number>;
  /** A replaced secret may be another Stripe account: each credential object gets its own number. */
  private readonly credentialIds = new WeakMap<VendorCredential, number>();
  private nextCredentialId = 1;

  /** Keeps at least the last `capacity / 2` calls and never more than `capacity`. */
  constructor(capacity = DEFAULT_CAPACITY) {
    this.calls = new GenerationalMap(capacity);
  }

  remember(keyId: string, credential: VendorCredential, method: string, path: string, idempotencyKey: string, nowMs: number): void {
    this.calls.set(this.entryId(keyId, credential, method, path, idempotencyKey), nowMs);
  }

  has(keyId: string, credential: VendorCredential, method: string, path: string, idempotencyKey: string, nowMs: number): boolean {
    const atMs = this.calls.get(this.entryId(keyId, credential, method, path, idempotencyKey));
    return atMs !== undefined && nowMs - atMs < REMEMBERED_FOR_MS;
  }

  private entryId(keyId: string, credential: VendorCredential, method: string, path: string, idempotencyKey: string): string {
    let credentialId = this.credentialIds.get(credential);
    if (credentialId === undefined) {
      credentialId = this.nextCredentialId++;
      this.credentialIds.set(credential, credentialId);
    }
    return `${credentialId}\n${keyId}\n${method} ${path}\n${idempotencyKey}`;
  }
}
