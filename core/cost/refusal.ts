/**
 * Internal control flow of the cost models: deep helpers throw a `CostRefusal`, and the one entry
 * point (estimateCost) turns it into a `refused` estimate. Nothing else is ever caught, so a bug
 * still surfaces as a bug instead of as a refusal.
 */
import type { CostEstimate, KeyPricing, RefusalCode } from './types.js';

export class CostRefusal extends Error {
  override readonly name = 'CostRefusal';
  readonly code: RefusalCode;

  constructor(code: RefusalCode, message: string) {
    super(message);
    this.code = code;
  }

  toEstimate(): CostEstimate {
    return { kind: 'refused', code: this.code, message: this.message };
  }
}

export function malformed(message: string): CostRefusal {
  return new CostRefusal('request_malformed', message);
}

export function notPriced(currency: string): CostRefusal {
  return new CostRefusal('currency_not_priced', `no exchange rate is configured for ${currency.toUpperCase()}; an operator must set one before calls in it can be capped`);
}

/** The call would send money to, or act as, a connected account: no vault key may (yet). */
export function accountRouting(message: string): CostRefusal {
  return new CostRefusal('account_routing', message);
}

export const FREE: CostEstimate = Object.freeze({ kind: 'free' });

/**
 * A call whose amount the request does not (fully) reveal. The operator's per-call allowance
 * prices it; without one it is refused. `atLeastMicros` is what the request does reveal (e.g.
 * the visible line items of a Checkout Session with tax on top): the reservation never goes below
 * money the call visibly moves.
 */
export function perCallEstimate(key: KeyPricing, reason: string, atLeastMicros = 0): CostEstimate {
  const allowance = Number.isSafeInteger(key.perCallEstimateMicros) && key.perCallEstimateMicros > 0 ? key.perCallEstimateMicros : 0;
  if (allowance === 0) {
    return { kind: 'refused', code: 'amount_unknown', message: `${reason}; this vault key has no per-call estimate to price it with` };
  }
  const micros = Math.max(allowance, atLeastMicros);
  return { kind: 'priced', micros, amount: null, currency: null, detail: `per-call estimate: ${reason}` };
}

/** Runs a pricing function, turning a refusal thrown anywhere inside into the refused estimate. */
export function refusalsAsEstimates(price: () => CostEstimate): CostEstimate {
  try {
    return price();
  } catch (error) {
    if (error instanceof CostRefusal) return error.toEstimate();
    throw error;
  }
}
