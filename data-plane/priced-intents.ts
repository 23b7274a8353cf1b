/**
 * PaymentIntents already priced at creation, per key: by this data plane, or by another one
 * (the control plane passes those on from the audit trail, including those from before this
 * process started). Confirming or capturing one of them moves money that was counted when it
 * was created, so it costs nothing more. One not (yet) known here is priced on its own: never
 * cheaper than it should be.
 */
const DEFAULT_CAPACITY = 100_000;

export class PricedIntents {
  private readonly entries = new Map<string, true>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  remember(keyId: string, intentId: string): void {
    const id = `${keyId}/${intentId}`;
    this.entries.delete(id);
    this.entries.set(id, true);
    // Oldest first: a Map iterates in insertion order.
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }

  has(keyId: string, intentId: string): boolean {
    return this.entries.has(`${keyId}/${intentId}`);
  }
}

/** `pi_…` when the call confirms or captures an existing PaymentIntent, else null. */
export function intentSettledBefore(method: string, segments: readonly string[]): string | null {
  if (method !== 'POST' || segments.length !== 4 || segments[0] !== 'v1' || segments[1] !== 'payment_intents') return null;
  return segments[3] === 'confirm' || segments[3] === 'capture' ? segments[2]! : null;
}

/** `pi_…` when the call creates a PaymentIntent, else null. */
export function createsIntent(method: string, segments: readonly string[]): boolean {
  return method === 'POST' && segments.length === 2 && segments[0] === 'v1' && segments[1] === 'payment_intents';
}
