/**
 * Stripe's cost model. A read (GET, HEAD) is free. Any other call is priced by the route tables
 * (stripe-routes.ts, listed in docs/pricing.md): from its parameters where the request states the
 * money, by the key's per-call estimate where money moves but the request does not bound it,
 * free where Stripe's API reference says nothing moves. A call on none of the tables is priced by
 * the per-call estimate too, and refused without one: an endpoint Keybrake has not classified
 * is never free. The allowlist decides which calls a key may make at all; this decides what
 * each allowed call may cost.
 *
 * Every v1 call that is not a read has its parameters (query and form body) parsed once, here:
 * the same tree is checked for Connect routing (stripe-account-routing.ts) and priced. /v2 takes
 * JSON and is priced by route alone: its money movers by the per-call estimate.
 */
import { minorToMicros } from './currency.js';
import { parseBracketForm, readFormPairs, type FormMap } from './form-body.js';
import type { PriceTables } from './price-tables.js';
import { CostRefusal, FREE, perCallEstimate } from './refusal.js';
import { headerValue, isRecord, outcomeOf, responseJson, stringField, type Outcome } from './settlement.js';
import { refuseAccountRouting } from './stripe-account-routing.js';
import { findStripeRoute, type Settles } from './stripe-routes.js';
import type { CostEstimate, KeyPricing, PricedRequest, Settlement, VendorResponse } from './types.js';
import { excerpt } from '../quote.js';

/** Methods that read: Stripe moves money on no GET. */
const READS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

const NO_PARAMS: FormMap = new Map();

function unclassified(request: PricedRequest, key: KeyPricing): CostEstimate {
  const target = excerpt(`${request.method} /${request.segments.join('/')}`);
  return perCallEstimate(key, `${target} is on none of Keybrake's lists of priced or free Stripe calls, so what it moves is not known`);
}

/** Throws CostRefusal; the dispatcher turns that into a refused estimate. */
export function estimateStripe(request: PricedRequest, key: KeyPricing, tables: PriceTables): CostEstimate {
  if (READS.has(request.method)) return FREE;
  const route = findStripeRoute(request.method, request.segments);
  let params = NO_PARAMS;
  if (request.segments[0] === 'v1') {
    params = parseBracketForm(readFormPairs(request));
    refuseAccountRouting(params, route?.route);
  }
  return route === undefined ? unclassified(request, key) : route.price({ params, key, tables });
}

// ---- settlement ----------------------------------------------------------------------------

/** A whole number of minor units as the answer states it; a signed amount as its size. */
function answeredAmount(value: unknown, signed: boolean): bigint | null {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return null;
  if (value >= 0) return BigInt(value);
  return signed ? BigInt(-value) : null;
}

interface Revealed {
  readonly amount: bigint;
  readonly currency: string;
  readonly micros: number;
}

/** The amount the answer shows moved, in micro-USD; null when it shows none we can price. */
function revealedAmount(settles: Settles | null, body: unknown, tables: PriceTables): Revealed | null {
  if (settles === null || !isRecord(body) || body.object !== settles.object) return null;
  // The object holding the amount: the answer itself, or an expanded object inside it.
  let holder: unknown = body;
  for (const name of settles.amount.slice(0, -1)) holder = isRecord(holder) ? holder[name] : undefined;
  if (!isRecord(holder)) return null;
  const amount = answeredAmount(holder[settles.amount[settles.amount.length - 1] ?? ''], settles.signed === true);
  const currency = stringField(holder, 'currency')?.toLowerCase() ?? null;
  if (amount === null || currency === null) return null;
  try {
    return { amount, currency, micros: minorToMicros(amount, currency, tables) };
  } catch (error) {
    // A currency without a rate (or an absurd amount): keep the reservation as the figure.
    if (error instanceof CostRefusal) return null;
    throw error;
  }
}

/** A Charge's id, or the latest Charge of a PaymentIntent (an id, or the expanded object's id). */
function chargeIdOf(body: unknown): string | null {
  if (!isRecord(body)) return null;
  if (body.object === 'charge') return stringField(body, 'id');
  if (body.object === 'payment_intent') {
    const latest = body.latest_charge;
    return typeof latest === 'string' && latest !== '' ? latest : stringField(latest, 'id');
  }
  return null;
}

type PricedEstimate = Extract<CostEstimate, { kind: 'priced' }>;

/**
 * What a priced call cost. Nothing when Stripe refused it or replayed a stored answer (the money
 * moved, or not, the first time); the reservation when the outcome is unknown or the answer shows
 * no amount. Otherwise what the answer shows, even above the reservation, less what an earlier
 * call already counted for the object (`coveredMicros`), and never below the reservation where
 * the object can still move it (`atLeastReserved`).
 */
function settledMicros(estimate: PricedEstimate, settles: Settles | null, revealed: Revealed | null, outcome: Outcome, replayed: boolean): number {
  if (replayed || outcome === 'refused') return 0;
  if (outcome === 'indeterminate' || revealed === null) return estimate.micros;
  if (estimate.coveredMicros !== undefined) return Math.max(0, revealed.micros - estimate.coveredMicros);
  return settles?.atLeastReserved === true ? Math.max(estimate.micros, revealed.micros) : revealed.micros;
}

export function settleStripe(request: PricedRequest, estimate: CostEstimate, response: VendorResponse, tables: PriceTables): Settlement {
  const body = responseJson(response.body);
  const objectId = stringField(body, 'id');
  const stripeChargeId = chargeIdOf(body);
  const replayed = headerValue(response.headers, 'idempotent-replayed')?.trim().toLowerCase() === 'true';
  // A free call moves nothing, whatever amount its object shows (a metadata update of an intent).
  if (estimate.kind !== 'priced') return { micros: 0, replayed, objectId, stripeChargeId, amount: null, currency: null };
  const settles = findStripeRoute(request.method, request.segments)?.settles ?? null;
  const revealed = revealedAmount(settles, body, tables);
  return {
    micros: settledMicros(estimate, settles, revealed, outcomeOf(response.status), replayed),
    replayed,
    objectId,
    stripeChargeId,
    amount: revealed === null ? estimate.amount : Number(revealed.amount),
    currency: revealed?.currency ?? estimate.currency,
  };
}
