/**
 * PaymentIntents already priced at creation, per key: by this data plane, or by another one
 * (the control plane passes those on from the audit trail, including those from before this
 * process started). Confirming or capturing one of them moves money that was counted when it
 * was created, so it costs nothing more, unless its answer shows more money moved than was
 * counted then: the difference counts (proxy.ts). One not (yet) known here is priced on its own: never
 * cheaper than it should be.
 */
import { GenerationalMap } from '../core/generational-map.js';

const DEFAULT_CAPACITY = 100_000;

export class PricedIntents {
  /** What each intent's creation was counted at, in micro-USD. */
  private readonly intents: GenerationalMap<number>;

  /** Keeps at least the last `capacity / 2` intents and never more than `capacity`. */
  constructor(capacity = DEFAULT_CAPACITY) {
    this.intents = new GenerationalMap(capacity);
  }

  remember(keyId: string, intentId: string, pricedMicros: number): void {
    this.intents.set(`${keyId}/${intentId}`, pricedMicros);
  }

  get size(): number {
    return this.intents.size;
  }

  /** What the intent's creation was counted at; undefined when it is not known to have been priced. */
  pricedMicros(keyId: string, intentId: string): number | undefined {
    return this.intents.get(`${keyId}/${intentId}`);
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
