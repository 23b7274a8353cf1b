/**
 * Idempotency-Key bookkeeping shared by the Stripe and Resend simulators: both store the first
 * response for a key and replay it for the same request, refuse the key for a different request,
 * and answer 409 to a duplicate that arrives while the first is still being handled.
 */
import type { SimResponse } from './simulator.js';

export interface StoredResponse {
  response: SimResponse;
  /** The id the vendor gave the first request (Stripe's Request-Id), sent back as Original-Request. */
  originalRequestId: string | undefined;
}

export type IdempotencyLookup =
  | { kind: 'new'; commit(stored: StoredResponse): void; release(): void }
  | { kind: 'replay'; stored: StoredResponse }
  | { kind: 'mismatch' }
  | { kind: 'in-flight' };

type Entry = { fingerprint: string; state: 'in-flight' } | { fingerprint: string; state: 'done'; stored: StoredResponse };

export class IdempotencyStore {
  readonly #entries = new Map<string, Entry>();

  /**
   * Looks the key up and, when it is new, reserves it: the caller must then either commit() the
   * response to replay later or release() the key (for answers the vendor does not store, such as
   * validation failures or an injected outage).
   */
  begin(key: string, fingerprint: string): IdempotencyLookup {
    const entry = this.#entries.get(key);
    if (entry?.state === 'in-flight') return { kind: 'in-flight' };
    if (entry && entry.fingerprint !== fingerprint) return { kind: 'mismatch' };
    if (entry?.state === 'done') return { kind: 'replay', stored: entry.stored };
    this.#entries.set(key, { fingerprint, state: 'in-flight' });
    let settled = false;
    return {
      kind: 'new',
      commit: (stored) => {
        if (settled) return;
        settled = true;
        this.#entries.set(key, { fingerprint, state: 'done', stored });
      },
      release: () => {
        if (settled) return;
        settled = true;
        this.#entries.delete(key);
      },
    };
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** JSON with sorted object keys: two requests with the same parameters in any order compare equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
