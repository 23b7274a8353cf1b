/**
 * Reading a vendor's answer: the parts every vendor's settlement shares.
 */
import type { CostEstimate, Settlement, VendorResponse } from './types.js';

/** A header's value, names matched case-insensitively; repeated headers are joined with ", ". */
export function headerValue(headers: VendorResponse['headers'], name: string): string | undefined {
  const wanted = name.toLowerCase();
  // Called on every answer, mostly for a header that is absent: compare lengths before case.
  for (const key in headers) {
    if (key.length !== wanted.length || key.toLowerCase() !== wanted) continue;
    const value = headers[key];
    if (value === undefined) continue;
    return typeof value === 'string' ? value : value.join(', ');
  }
  return undefined;
}

/**
 * What a status says about whether the call happened. 2xx: it did. 4xx: the vendor refused it
 * and nothing moved (validation, auth, a declined card, a rate limit, an in-flight idempotent
 * duplicate). Anything else (5xx above all) is indeterminate — Stripe documents a 500's result as
 * unknown — so the reservation is kept as spent rather than released on a guess.
 */
export type Outcome = 'succeeded' | 'refused' | 'indeterminate';

export function outcomeOf(status: number): Outcome {
  if (status >= 200 && status <= 299) return 'succeeded';
  if (status >= 400 && status <= 499) return 'refused';
  return 'indeterminate';
}

/** The answer's JSON, or null when it is not JSON (a gateway's HTML page, an empty body). */
export function responseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return null;
  }
}

export function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function stringField(object: unknown, name: string): string | null {
  if (!isRecord(object)) return null;
  const value = object[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

/** What the estimate reserved: for a call whose answer reveals no better figure. */
export function estimatedMicros(estimate: CostEstimate): number {
  return estimate.kind === 'priced' ? estimate.micros : 0;
}

/** The settlement of a call whose answer reveals no amount: the reservation, unless refused. */
export function settleFromEstimate(estimate: CostEstimate, response: VendorResponse, objectId: string | null): Settlement {
  const moved = outcomeOf(response.status) !== 'refused';
  const priced = estimate.kind === 'priced' ? estimate : null;
  return {
    micros: moved && priced !== null ? priced.micros : 0,
    objectId,
    stripeChargeId: null,
    replayed: false,
    amount: priced?.amount ?? null,
    currency: priced?.currency ?? null,
  };
}
