/** Requests, keys and price tables for the cost model tests. */
import type { KeyPricing, PricedRequest, VendorResponse } from '../../../core/cost/index.js';
import { compilePriceTables, type PriceTables } from '../../../core/cost/price-tables.js';

/** Rates chosen so that rounding shows: most conversions are not exact. */
export const TABLES: PriceTables = compilePriceTables({
  exchangeRates: {
    usd: { microsPerMajorUnit: 1_000_000 },
    eur: { microsPerMajorUnit: 1_083_333 },
    gbp: { microsPerMajorUnit: 1_270_000 },
    jpy: { microsPerMajorUnit: 6_667 },
    krw: { microsPerMajorUnit: 733 },
    kwd: { microsPerMajorUnit: 3_250_000 },
    bhd: { microsPerMajorUnit: 2_652_000 },
    isk: { microsPerMajorUnit: 7_200 },
    ugx: { microsPerMajorUnit: 270 },
    huf: { microsPerMajorUnit: 2_800 },
    twd: { microsPerMajorUnit: 31_000 },
  },
  twilio: {
    smsSegmentMicros: { default: 100_000, byCountryCode: { '1': 8_300, '44': 52_400, '1876': 90_000 } },
    mmsMicros: { default: 250_000, byCountryCode: { '1': 20_000 } },
    callMinuteMicros: { default: 500_000, byCountryCode: { '1': 14_000, '44': 40_000 } },
    defaultCallTimeLimitSeconds: 600,
  },
  resend: { emailMicros: 900 },
});

/** Only USD priced: what a US-only operator configures. */
export const USD_ONLY: PriceTables = compilePriceTables({ ...(rawTablesOf(TABLES) as object), exchangeRates: {} });

function rawTablesOf(tables: PriceTables): unknown {
  return JSON.parse(JSON.stringify(tables)) as unknown;
}

export const NO_ALLOWANCE: KeyPricing = { perCallEstimateMicros: 0 };
export const ALLOWANCE: KeyPricing = { perCallEstimateMicros: 25_000_000 };

const FORM = 'application/x-www-form-urlencoded';

/** A Stripe POST with a form body (and optionally a query). */
export function stripePost(path: string, body: string | null = null, options: { query?: string; contentType?: string } = {}): PricedRequest {
  return {
    vendor: 'stripe',
    method: 'POST',
    segments: path.slice(1).split('/'),
    query: options.query ?? '',
    contentType: body === null ? undefined : (options.contentType ?? FORM),
    body: body === null ? null : Buffer.from(body, 'utf8'),
  };
}

export function stripeGet(path: string, query = ''): PricedRequest {
  return { vendor: 'stripe', method: 'GET', segments: path.slice(1).split('/'), query, contentType: undefined, body: null };
}

/** A Stripe call with another method (DELETE carries its parameters in the query). */
export function stripeCall(method: string, path: string, query = ''): PricedRequest {
  return { ...stripeGet(path, query), method };
}

export const TWILIO_ACCOUNT = 'AC0123456789abcdef0123456789abcdef';

/** URL-encodes Twilio parameters as twilio-node does (repeated keys for lists). */
export function twilioForm(params: ReadonlyArray<readonly [string, string]>): string {
  return new URLSearchParams(params.map(([k, v]): [string, string] => [k, v])).toString();
}

export function twilioPost(resource: string, params: ReadonlyArray<readonly [string, string]>, method = 'POST'): PricedRequest {
  return {
    vendor: 'twilio',
    method,
    segments: ['2010-04-01', 'Accounts', TWILIO_ACCOUNT, ...resource.split('/')],
    query: '',
    contentType: FORM,
    body: Buffer.from(twilioForm(params), 'utf8'),
  };
}

export function resendPost(path: string, json: unknown, method = 'POST'): PricedRequest {
  return {
    vendor: 'resend',
    method,
    segments: path.slice(1).split('/'),
    query: '',
    contentType: 'application/json',
    body: Buffer.from(typeof json === 'string' ? json : JSON.stringify(json), 'utf8'),
  };
}

export function response(status: number, body: unknown, headers: VendorResponse['headers'] = {}): VendorResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8'),
  };
}
