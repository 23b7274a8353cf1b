/**
 * What calls cost: exchange rates into micro-USD and the vendors' unit prices. This is operator
 * configuration, validated once by `compilePriceTables` so the data plane only ever prices with
 * well-formed tables. Every number is an integer: a rate is micro-USD per major unit of a
 * currency (EUR 1.20 → 1_200_000), never a float.
 */
import { describeType } from '../money.js';
import { quote } from '../quote.js';

/** A unit price by destination: the longest `byCountryCode` key that prefixes the number wins. */
export interface CountryPrices {
  readonly default: number;
  /** Keys are E.164 digit prefixes: a country code ('44'), or longer to single out part of one ('1876'). */
  readonly byCountryCode: Readonly<Record<string, number>>;
}

export interface ExchangeRate {
  readonly microsPerMajorUnit: number;
}

export interface PriceTables {
  /** Keyed by lower-case ISO 4217 code, as Stripe writes currencies. */
  readonly exchangeRates: Readonly<Record<string, ExchangeRate>>;
  readonly twilio: {
    readonly smsSegmentMicros: CountryPrices;
    /** One MMS, whatever its length: Twilio bills MMS per message. */
    readonly mmsMicros: CountryPrices;
    readonly callMinuteMicros: CountryPrices;
    /** What a call without `TimeLimit` is priced at, in seconds. */
    readonly defaultCallTimeLimitSeconds: number;
  };
  readonly resend: {
    readonly emailMicros: number;
  };
}

/** Twilio accepts a TimeLimit of up to 24 hours. */
export const MAX_CALL_TIME_LIMIT_SECONDS = 86_400;
const CURRENCY_CODE = /^[a-z]{3}$/;
/** An E.164 prefix: up to the 15 digits of a whole number, never starting with 0. */
const DIAL_PREFIX = /^[1-9]\d{0,14}$/;
const USD_RATE = 1_000_000;

export class PriceTableError extends Error {
  override readonly name = 'PriceTableError';
  readonly field: string;

  constructor(field: string, problem: string) {
    // One line naming the field path, so an operator can find the mistake in their file.
    super(`${field}: ${problem}`);
    this.field = field;
  }
}

type JsonObject = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objectAt(value: unknown, field: string, allowed: readonly string[] | null): JsonObject {
  if (!isObject(value)) throw new PriceTableError(field === '' ? 'price tables' : field, `must be an object, got ${describeType(value)}`);
  if (allowed !== null) {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) throw new PriceTableError(`${field === '' ? '' : `${field}.`}${key}`, `unknown field (expected ${allowed.join(', ')})`);
    }
    for (const key of allowed) {
      if (value[key] === undefined) throw new PriceTableError(`${field === '' ? '' : `${field}.`}${key}`, 'is required');
    }
  }
  return value;
}

function wholeNumber(value: unknown, field: string, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new PriceTableError(field, `must be ${what}, got ${describeType(value)}`);
  }
  return value;
}

const micros = (value: unknown, field: string): number => wholeNumber(value, field, 'a positive whole number of micro-USD', 1);

function compileCountryPrices(value: unknown, field: string): CountryPrices {
  const object = objectAt(value, field, ['default', 'byCountryCode']);
  const byCountry = objectAt(object.byCountryCode, `${field}.byCountryCode`, null);
  const byCountryCode: Record<string, number> = {};
  for (const [prefix, price] of Object.entries(byCountry)) {
    const entry = `${field}.byCountryCode[${quote(prefix)}]`;
    if (!DIAL_PREFIX.test(prefix)) throw new PriceTableError(entry, 'keys are E.164 digit prefixes without "+", e.g. "1" or "44"');
    byCountryCode[prefix] = micros(price, entry);
  }
  return Object.freeze({ default: micros(object.default, `${field}.default`), byCountryCode: Object.freeze(byCountryCode) });
}

function compileExchangeRates(value: unknown): Record<string, ExchangeRate> {
  const rates: Record<string, ExchangeRate> = {};
  for (const [currency, rate] of Object.entries(objectAt(value, 'exchangeRates', null))) {
    const field = `exchangeRates[${quote(currency)}]`;
    if (!CURRENCY_CODE.test(currency)) throw new PriceTableError(field, 'keys are lower-case ISO 4217 currency codes, e.g. "eur"');
    const microsPerMajorUnit = wholeNumber(
      objectAt(rate, field, ['microsPerMajorUnit']).microsPerMajorUnit,
      `${field}.microsPerMajorUnit`,
      'a positive whole number of micro-USD per major unit (1.20 USD → 1200000)',
      1,
    );
    if (currency === 'usd' && microsPerMajorUnit !== USD_RATE) {
      throw new PriceTableError(`${field}.microsPerMajorUnit`, `must be ${USD_RATE}: caps are kept in USD`);
    }
    rates[currency] = Object.freeze({ microsPerMajorUnit });
  }
  // USD is the caps' own currency: it never needs an operator-set rate.
  rates.usd ??= Object.freeze({ microsPerMajorUnit: USD_RATE });
  return rates;
}

/** Validates operator JSON into price tables; throws a one-line PriceTableError naming the field. */
export function compilePriceTables(json: unknown): PriceTables {
  const root = objectAt(json, '', ['exchangeRates', 'twilio', 'resend']);
  const twilio = objectAt(root.twilio, 'twilio', ['smsSegmentMicros', 'mmsMicros', 'callMinuteMicros', 'defaultCallTimeLimitSeconds']);
  const resend = objectAt(root.resend, 'resend', ['emailMicros']);
  return Object.freeze({
    exchangeRates: Object.freeze(compileExchangeRates(root.exchangeRates)),
    twilio: Object.freeze({
      smsSegmentMicros: compileCountryPrices(twilio.smsSegmentMicros, 'twilio.smsSegmentMicros'),
      mmsMicros: compileCountryPrices(twilio.mmsMicros, 'twilio.mmsMicros'),
      callMinuteMicros: compileCountryPrices(twilio.callMinuteMicros, 'twilio.callMinuteMicros'),
      defaultCallTimeLimitSeconds: wholeNumber(
        twilio.defaultCallTimeLimitSeconds,
        'twilio.defaultCallTimeLimitSeconds',
        `a whole number of seconds from 1 to ${MAX_CALL_TIME_LIMIT_SECONDS}`,
        1,
        MAX_CALL_TIME_LIMIT_SECONDS,
      ),
    }),
    resend: Object.freeze({ emailMicros: micros(resend.emailMicros, 'resend.emailMicros') }),
  });
}

/** The unit price for an E.164 number's digits, and which prefix chose it (null: the default). */
export function priceForDestination(prices: CountryPrices, digits: string): { micros: number; prefix: string | null } {
  for (let length = Math.min(digits.length, 15); length > 0; length -= 1) {
    const prefix = digits.slice(0, length);
    if (Object.hasOwn(prices.byCountryCode, prefix)) return { micros: prices.byCountryCode[prefix] ?? prices.default, prefix };
  }
  return { micros: prices.default, prefix: null };
}

/**
 * NANP area codes outside the US and Canada. They share +1 with the US but carriers bill them
 * as international, several times the US price: each gets the unknown-country default so that
 * "+1" never prices a Jamaican number at the US rate.
 */
export const NANP_NON_US_CA_AREA_CODES: readonly string[] = [
  '242', '246', '264', '268', '284', '345', '441', '473', '649', '658', '664', '721',
  '758', '767', '784', '809', '829', '849', '868', '869', '876',
];

function withNanpExceptions(defaultMicros: number, byCountryCode: Record<string, number>): { default: number; byCountryCode: Record<string, number> } {
  const exceptions = Object.fromEntries(NANP_NON_US_CA_AREA_CODES.map((area) => [`1${area}`, defaultMicros]));
  return { default: defaultMicros, byCountryCode: { ...byCountryCode, ...exceptions } };
}

/**
 * Defaults for a fresh install. They are placeholders an operator must replace with their own
 * contract prices and current exchange rates; each is rounded UP from list prices and market
 * rates (mid-2025), so until then caps err on the side of stopping calls early.
 */
export const DEFAULT_PRICE_TABLES_JSON = {
  exchangeRates: {
    // Market rates rounded up by roughly 5–10 %: overstating a foreign amount only reserves more.
    usd: { microsPerMajorUnit: 1_000_000 },
    eur: { microsPerMajorUnit: 1_200_000 },
    gbp: { microsPerMajorUnit: 1_400_000 },
    chf: { microsPerMajorUnit: 1_300_000 },
    cad: { microsPerMajorUnit: 800_000 },
    aud: { microsPerMajorUnit: 700_000 },
    jpy: { microsPerMajorUnit: 7_500 },
  },
  twilio: {
    // US/Canada ≈ $0.0083 a segment with carrier fees, UK ≈ $0.0524; $0.20 bounds nearly every
    // other destination's list price.
    smsSegmentMicros: withNanpExceptions(200_000, { '1': 8_300, '44': 52_400 }),
    // MMS is a US/Canada product (≈ $0.02); elsewhere Twilio converts it, so price it high.
    mmsMicros: withNanpExceptions(300_000, { '1': 20_000 }),
    // Outbound US/Canada ≈ $0.014/min; $0.60/min covers most international destinations.
    callMinuteMicros: withNanpExceptions(600_000, { '1': 14_000 }),
    // Twilio's own default TimeLimit is 4 hours: a call sent without one can really last that
    // long, so anything lower would not bound it. Agents should send TimeLimit.
    defaultCallTimeLimitSeconds: 14_400,
  },
  // Resend's pay-as-you-go overage is $0.90 per 1,000 emails.
  resend: { emailMicros: 900 },
} as const;

export const DEFAULT_PRICE_TABLES: PriceTables = compilePriceTables(DEFAULT_PRICE_TABLES_JSON);
