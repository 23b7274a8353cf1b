/**
 * What calls cost: exchange rates into micro-USD and the vendors' unit prices. This is operator
 * configuration, validated once by `compilePriceTables` so the data plane only ever prices with
 * well-formed tables. Every number is an integer: a rate is micro-USD per major unit of a
 * currency (EUR 1.20 → 1_200_000), never a float.
 */
import { describeType } from '../money.js';
import { quote } from '../quote.js';

/**
 * A unit price by destination: the longest prefix of the number that the table names wins, in
 * `byCountryCode` (priced) or in `refusedPrefixes` (not priced: refused), else `default`.
 */
export interface CountryPrices {
  readonly default: number;
  /** Keys are E.164 digit prefixes: a country code ('44'), or longer to single out part of one ('1876'). */
  readonly byCountryCode: Readonly<Record<string, number>>;
  /**
   * Destinations no unit price here bounds (satellite networks, premium-rate numbers): a call or
   * message to them is refused until an operator prices the prefix. Optional in the JSON: when
   * absent, `DEFAULT_REFUSED_PREFIXES` apply, except those `byCountryCode` prices exactly.
   */
  readonly refusedPrefixes: readonly string[];
}

/** What a table says about one destination. `prefix` null: no prefix matched, the default applies. */
export type DestinationPrice =
  | { readonly kind: 'priced'; readonly micros: number; readonly prefix: string | null }
  | { readonly kind: 'refused'; readonly prefix: string };

export interface ExchangeRate {
  readonly microsPerMajorUnit: number;
}

export interface PriceTables {
  /** Keyed by lower-case ISO 4217 code, as Stripe writes currencies. */
  readonly exchangeRates: Readonly<Record<string, ExchangeRate>>;
  readonly twilio: {
    readonly smsSegmentMicros: CountryPrices;
    /**
     * One MMS delivered as MMS, whatever its length. Where Twilio converts an MMS to SMS (its MMS
     * Converter, for destinations and carriers without MMS) it bills SMS segments instead, so an
     * MMS is priced at the larger of the two (twilio.ts).
     */
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

/** `required` fields must be present, `optional` ones may be; any other field is refused. */
function objectAt(value: unknown, field: string, required: readonly string[] | null, optional: readonly string[] = []): JsonObject {
  if (!isObject(value)) throw new PriceTableError(field === '' ? 'price tables' : field, `must be an object, got ${describeType(value)}`);
  if (required !== null) {
    const allowed = [...required, ...optional];
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) throw new PriceTableError(`${field === '' ? '' : `${field}.`}${key}`, `unknown field (expected ${allowed.join(', ')})`);
    }
    for (const key of required) {
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

function compileRefusedPrefixes(value: unknown, field: string, byCountryCode: Readonly<Record<string, number>>): readonly string[] {
  // Tables written before refusals existed get the defaults: a satellite call must not fall to
  // the default price because a file predates the field. A prefix such a file prices exactly
  // is the operator's own price and wins.
  if (value === undefined) return Object.freeze(DEFAULT_REFUSED_PREFIXES.filter((prefix) => !Object.hasOwn(byCountryCode, prefix)));
  if (!Array.isArray(value)) throw new PriceTableError(field, `must be a list of E.164 digit prefixes, got ${describeType(value)}`);
  const prefixes: string[] = [];
  for (const [index, prefix] of (value as unknown[]).entries()) {
    const entry = `${field}[${index}]`;
    if (typeof prefix !== 'string' || !DIAL_PREFIX.test(prefix)) {
      throw new PriceTableError(entry, `must be an E.164 digit prefix without "+", e.g. "881", got ${describeType(prefix)}`);
    }
    if (prefixes.includes(prefix)) throw new PriceTableError(entry, `${quote(prefix)} is listed twice`);
    // One prefix, two answers: the operator must say which one they mean.
    if (Object.hasOwn(byCountryCode, prefix)) throw new PriceTableError(entry, `${quote(prefix)} is also priced in byCountryCode; a prefix is either priced or refused`);
    prefixes.push(prefix);
  }
  return Object.freeze(prefixes);
}

function compileCountryPrices(value: unknown, field: string): CountryPrices {
  const object = objectAt(value, field, ['default', 'byCountryCode'], ['refusedPrefixes']);
  const byCountry = objectAt(object.byCountryCode, `${field}.byCountryCode`, null);
  const byCountryCode: Record<string, number> = {};
  for (const [prefix, price] of Object.entries(byCountry)) {
    const entry = `${field}.byCountryCode[${quote(prefix)}]`;
    if (!DIAL_PREFIX.test(prefix)) throw new PriceTableError(entry, 'keys are E.164 digit prefixes without "+", e.g. "1" or "44"');
    byCountryCode[prefix] = micros(price, entry);
  }
  return Object.freeze({
    default: micros(object.default, `${field}.default`),
    byCountryCode: Object.freeze(byCountryCode),
    refusedPrefixes: compileRefusedPrefixes(object.refusedPrefixes, `${field}.refusedPrefixes`, byCountryCode),
  });
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

/**
 * The unit price for an E.164 number's digits and which prefix chose it, or the refused prefix
 * that covers it. The longest prefix the table names wins, priced or refused alike: an operator
 * prices one Iridium range ("8816") inside refused "881" by naming it.
 */
export function priceForDestination(prices: CountryPrices, digits: string): DestinationPrice {
  const { byPrefix, longest } = lookupOf(prices);
  for (let length = Math.min(digits.length, longest); length > 0; length -= 1) {
    const prefix = digits.slice(0, length);
    const micros = byPrefix.get(prefix);
    if (micros === null) return { kind: 'refused', prefix };
    if (micros !== undefined) return { kind: 'priced', micros, prefix };
  }
  return { kind: 'priced', micros: prices.default, prefix: null };
}

interface PrefixLookup {
  /** A prefix's price, or null when it is refused. */
  readonly byPrefix: ReadonlyMap<string, number | null>;
  /** No prefix is longer: a lookup need not try longer ones. */
  readonly longest: number;
}

// Every message and call looks its destination up here: one map per (frozen) table, built once.
const LOOKUPS = new WeakMap<CountryPrices, PrefixLookup>();

function lookupOf(prices: CountryPrices): PrefixLookup {
  let lookup = LOOKUPS.get(prices);
  if (lookup === undefined) {
    const byPrefix = new Map<string, number | null>(Object.entries(prices.byCountryCode));
    // compilePriceTables refuses a prefix both priced and refused; a table built by hand keeps its price.
    for (const prefix of prices.refusedPrefixes) if (!byPrefix.has(prefix)) byPrefix.set(prefix, null);
    lookup = { byPrefix, longest: Math.max(0, ...[...byPrefix.keys()].map((prefix) => prefix.length)) };
    LOOKUPS.set(prices, lookup);
  }
  return lookup;
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

/**
 * Destinations whose price no default bounds, refused by the default tables (and by any table
 * that does not list its own `refusedPrefixes`). Each is a prefix of E.164 digits; `what` is
 * what docs/pricing.md (Twilio) shows (a unit test holds the two together). Sources:
 * - +870…+874 Inmarsat (+870 SNAC; +871…+874 the former ocean regions), +881 GMSS (Iridium
 *   8816/8817, Globalstar 8818/8819, ICO, Ellipso), +882/+883 International Networks (Thuraya
 *   is +882 16, plus satellite, maritime and M2M operators): ITU-T E.164 shared country codes;
 *   per-minute prices are several dollars, far above any default.
 * - +979 International Premium Rate Service (ITU-T E.155/E.169.2): premium by definition.
 * - +1 900: the NANP's premium-rate area code (pay-per-call, callee-set charges).
 * - +44 9: UK 09 numbers are premium rate (service charge up to £3.60/min or £6/call, Ofcom).
 * - +49 900: German 0900 premium voice (up to €3/min or €30/call); +49 137: 0137 televoting,
 *   charged per call whether or not it connects (Bundesnetzagentur tariff bands).
 * - +41 900/901/906: Swiss value-added numbers, callee-set surcharge (BAKOM).
 * - +33 89: French 089x "surtaxés" (up to €0.80/min or €3/call, ARCEP).
 * - +61 19: Australian 19x premium services (190x voice, 191-199 mobile premium, ACMA).
 * - +31 90, +32 90: Dutch and Belgian 090x premium numbers.
 * NANP 976 is an exchange code inside ordinary area codes (NPA-976-XXXX), not a prefix of the
 * E.164 number, so a prefix table cannot name it; those services are long gone.
 */
export const REFUSED_DESTINATIONS: ReadonlyArray<{ readonly prefix: string; readonly what: string }> = [
  { prefix: '870', what: 'Inmarsat (SNAC)' },
  { prefix: '871', what: 'Inmarsat Atlantic East (former ocean region)' },
  { prefix: '872', what: 'Inmarsat Pacific (former ocean region)' },
  { prefix: '873', what: 'Inmarsat Indian Ocean (former ocean region)' },
  { prefix: '874', what: 'Inmarsat Atlantic West (former ocean region)' },
  { prefix: '881', what: 'Global Mobile Satellite System: Iridium, Globalstar, ICO, Ellipso' },
  { prefix: '882', what: 'International Networks, including Thuraya (+882 16)' },
  { prefix: '883', what: 'International Networks' },
  { prefix: '979', what: 'International Premium Rate Service' },
  { prefix: '1900', what: 'NANP premium rate (1-900)' },
  { prefix: '449', what: 'UK premium rate (09)' },
  { prefix: '49900', what: 'Germany premium rate (0900)' },
  { prefix: '49137', what: 'Germany televoting (0137), charged per call' },
  { prefix: '41900', what: 'Switzerland premium rate (0900)' },
  { prefix: '41901', what: 'Switzerland premium rate (0901)' },
  { prefix: '41906', what: 'Switzerland premium rate (0906, adult)' },
  { prefix: '3389', what: 'France premium rate (089x)' },
  { prefix: '6119', what: 'Australia premium services (19x)' },
  { prefix: '3190', what: 'Netherlands premium rate (090x)' },
  { prefix: '3290', what: 'Belgium premium rate (090x)' },
];

export const DEFAULT_REFUSED_PREFIXES: readonly string[] = Object.freeze(REFUSED_DESTINATIONS.map((destination) => destination.prefix));

function withNanpExceptions(
  defaultMicros: number,
  byCountryCode: Record<string, number>,
): { default: number; byCountryCode: Record<string, number>; refusedPrefixes: string[] } {
  const exceptions = Object.fromEntries(NANP_NON_US_CA_AREA_CODES.map((area) => [`1${area}`, defaultMicros]));
  return { default: defaultMicros, byCountryCode: { ...byCountryCode, ...exceptions }, refusedPrefixes: [...DEFAULT_REFUSED_PREFIXES] };
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
    // MMS is a US/Canada product (≈ $0.02); elsewhere Twilio converts it to SMS with a media link
    // and bills the SMS segments, which twilio.ts prices from smsSegmentMicros. This price bounds
    // a real MMS to a destination this table does not know.
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
