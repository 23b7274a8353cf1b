/**
 * PaymentIntents already priced at creation, per key: by this data plane, or by another one
 * (the control plane passes those on from the audit trail, including those from before this
 * process started). Confirming or capturing one of them moves money that was counted when it
 * was created, so it costs nothing more. One not (yet) known here is priced on its own: never
 * cheaper than it should be.
 */
const DEFAULT_CAPACITY = 100_000;

export class PricedIntents {
  /** Two generations: when the current one is full, the oldest is dropped whole (see ReplayableCalls). */
  private current = new Set<string>();
  private previous = new Set<string>();

  /** Keeps at least the last `capacity / 2` intents and never more than `capacity`. */
  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  remember(keyId: string, intentId: string): void {
    const id = `${keyId}/${intentId}`;
    if (this.current.has(id)) return;
    if (this.current.size >= Math.max(1, Math.floor(this.capacity / 2))) {
      this.previous = this.current;
      this.current = new Set();
    }
    this.current.add(id);
  }

  get size(): number {
    let size = this.current.size;
    for (const id of this.previous) if (!this.current.has(id)) size++;
    return size;
  }

  has(keyId: string, intentId: string): boolean {
    const id = `${keyId}/${intentId}`;
    return this.current.has(id) || this.previous.has(id);
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
