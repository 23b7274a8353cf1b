/**
 * Cost models for the data plane: `estimateCost` before forwarding (an upper bound, reserved
 * against the key's caps) and `settleCost` after the vendor answers (what the call cost).
 * Pure: the same request and tables always give the same answer.
 */
import type { PriceTables } from './price-tables.js';
import { refusalsAsEstimates } from './refusal.js';
import { estimateResend, settleResend } from './resend.js';
import { estimateStripe, settleStripe } from './stripe.js';
import { estimateTwilio, settleTwilio } from './twilio.js';
import type { CostEstimate, KeyPricing, PricedRequest, Settlement, VendorResponse } from './types.js';

export type { CostEstimate, KeyPricing, PricedRequest, RefusalCode, Settlement, VendorResponse } from './types.js';
export {
  compilePriceTables,
  DEFAULT_PRICE_TABLES,
  DEFAULT_PRICE_TABLES_JSON,
  MAX_CALL_TIME_LIMIT_SECONDS,
  PriceTableError,
  priceForDestination,
  type CountryPrices,
  type ExchangeRate,
  type PriceTables,
} from './price-tables.js';
export { currencyExponent, minorToMicros } from './currency.js';
export { countSegments, type SegmentCount, type SmsEncoding } from './sms-segments.js';

/** Never throws for anything a caller sends: a call it cannot bound comes back `refused`. */
export function estimateCost(request: PricedRequest, key: KeyPricing, tables: PriceTables): CostEstimate {
  const normalised = withUpperCaseMethod(request);
  return refusalsAsEstimates(() => {
    switch (normalised.vendor) {
      case 'stripe':
        return estimateStripe(normalised, key, tables);
      case 'twilio':
        return estimateTwilio(normalised, key, tables);
      case 'resend':
        return estimateResend(normalised, key, tables);
    }
  });
}

/**
 * What a forwarded call cost, from the vendor's answer. A 4xx costs nothing (the vendor refused
 * it); a 5xx keeps the reservation (its outcome is unknown); a Stripe replay costs nothing.
 * Timeouts and lost answers never reach here: the caller keeps their reservation.
 */
export function settleCost(request: PricedRequest, estimate: CostEstimate, response: VendorResponse, tables: PriceTables): Settlement {
  switch (request.vendor) {
    case 'stripe':
      return settleStripe(withUpperCaseMethod(request), estimate, response, tables);
    case 'twilio':
      return settleTwilio(request, estimate, response);
    case 'resend':
      return settleResend(request, estimate, response);
  }
}

/** Methods are matched upper-case (routes, reads): a 'post' spelt otherwise must not pass for an unknown, or a free, call. Copies only when it must. */
function withUpperCaseMethod(request: PricedRequest): PricedRequest {
  const method = request.method.toUpperCase();
  return method === request.method ? request : { ...request, method };
}
