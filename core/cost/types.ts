/**
 * The shapes the data plane and the cost models share. A cost model is pure: it reads the
 * request (before forwarding) or the vendor's answer (after) and the operator's price tables,
 * and nothing else — no clock, no I/O, no randomness — so the same call always costs the same.
 */
import type { Vendor } from '../vendors.js';

export interface PricedRequest {
  readonly vendor: Vendor;
  /** Upper-case HTTP method, e.g. 'POST'. */
  readonly method: string;
  /** Canonical path segments in the vendor's own path space, e.g. ['v1', 'payment_intents', 'pi_123', 'capture']. */
  readonly segments: readonly string[];
  /** The raw query string without '?', exactly as forwarded. */
  readonly query: string;
  readonly contentType: string | undefined;
  readonly body: Buffer | null;
}

/** What the vault key's policy says about pricing. */
export interface KeyPricing {
  /**
   * Operator-set allowance in micro-USD for a call whose amount the request does not reveal
   * (confirming an existing PaymentIntent, paying an invoice, a refund of "the rest", …).
   * 0 means none: such calls are refused with `amount_unknown`.
   */
  readonly perCallEstimateMicros: number;
}

/**
 * Why a call is not forwarded. `account_routing`: the call would send money to, or act as, a
 * connected account (`on_behalf_of`, `transfer_data`, …), which no vault key may do yet.
 */
export type RefusalCode = 'request_malformed' | 'amount_unknown' | 'currency_not_priced' | 'account_routing';

export type CostEstimate =
  /** Moves no money: reads, customers, metadata updates, … */
  | { readonly kind: 'free' }
  /**
   * `micros` is an upper bound of what the call can move. `amount`/`currency` are the amount in
   * the currency's minor unit as the request states it, when the request states one.
   */
  | {
      readonly kind: 'priced';
      readonly micros: number;
      readonly amount: number | null;
      readonly currency: string | null;
      readonly detail: string;
      /**
       * Money already counted for this object by an earlier call (a PaymentIntent priced at its
       * creation, now confirmed or captured). Settlement counts only what the answer shows beyond
       * it: max(0, revealed − covered).
       */
      readonly coveredMicros?: number;
    }
  /** Not forwarded: the call's cost cannot be bounded. */
  | { readonly kind: 'refused'; readonly code: RefusalCode; readonly message: string };

export interface VendorResponse {
  readonly status: number;
  /** Response headers; names are matched case-insensitively. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body: Buffer;
}

export interface Settlement {
  /** What the call actually cost in micro-USD, as far as the answer tells. */
  readonly micros: number;
  /** The vendor's id of the object the call created or changed. */
  readonly objectId: string | null;
  /** Stripe only: the Charge behind the call (a Charge's id or a PaymentIntent's latest_charge). */
  readonly stripeChargeId: string | null;
  /** Stripe replayed a stored answer (Idempotent-Replayed: true): nothing moved this time. */
  readonly replayed: boolean;
  readonly amount: number | null;
  readonly currency: string | null;
}
