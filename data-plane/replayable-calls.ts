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
import type { VendorCredential } from './vendors/index.js';

/** Well inside Stripe's "at least 24 hours". */
const REMEMBERED_FOR_MS = 23 * 3_600_000;
const DEFAULT_CAPACITY = 100_000;

interface Remembered {
  readonly atMs: number;
  /** The credential object the call went out with: a replaced secret may be another account. */
  readonly credential: VendorCredential;
}

export class ReplayableCalls {
  private readonly entries = new Map<string, Remembered>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  remember(keyId: string, credential: VendorCredential, method: string, path: string, idempotencyKey: string, nowMs: number): void {
    const id = entryId(keyId, method, path, idempotencyKey);
    this.entries.delete(id);
    this.entries.set(id, { atMs: nowMs, credential });
    // Oldest first: a Map iterates in insertion order.
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  has(keyId: string, credential: VendorCredential, method: string, path: string, idempotencyKey: string, nowMs: number): boolean {
    const entry = this.entries.get(entryId(keyId, method, path, idempotencyKey));
    return entry !== undefined && entry.credential === credential && nowMs - entry.atMs < REMEMBERED_FOR_MS;
  }
}

function entryId(keyId: string, method: string, path: string, idempotencyKey: string): string {
  return `${keyId}\n${method} ${path}\n${idempotencyKey}`;
}
