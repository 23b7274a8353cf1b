import { describe, expect, it } from 'vitest';

import {
  compilePriceTables,
  DEFAULT_PRICE_TABLES,
  DEFAULT_PRICE_TABLES_JSON,
  DEFAULT_REFUSED_PREFIXES,
  NANP_NON_US_CA_AREA_CODES,
  PriceTableError,
  priceForDestination,
  REFUSED_DESTINATIONS,
  type CountryPrices,
} from '../../../core/cost/price-tables.js';
import { TABLES } from './helpers.js';

/** The unit price of a destination a test expects to be priced. */
function microsOf(prices: CountryPrices, digits: string): number {
  const price = priceForDestination(prices, digits);
  if (price.kind !== 'priced') throw new Error(`+${digits} is refused`);
  return price.micros;
}

/** A valid document to break one field of at a time. */
function validJson(): Record<string, unknown> {
  return JSON.parse(JSON.stringify(DEFAULT_PRICE_TABLES_JSON)) as Record<string, unknown>;
}

function withField(path: readonly string[], value: unknown): unknown {
  const json = validJson();
  let node: Record<string, unknown> = json;
  for (const segment of path.slice(0, -1)) node = node[segment] as Record<string, unknown>;
  const last = path[path.length - 1] ?? '';
  if (value === undefined) delete node[last];
  else node[last] = value;
  return json;
}

describe('DEFAULT_PRICE_TABLES', () => {
  it('is the compiled form of its JSON, and survives a JSON round trip', () => {
    expect(compilePriceTables(JSON.parse(JSON.stringify(DEFAULT_PRICE_TABLES)))).toEqual(DEFAULT_PRICE_TABLES);
    expect(compilePriceTables(validJson())).toEqual(DEFAULT_PRICE_TABLES);
  });

  it('has the documented defaults', () => {
    expect(DEFAULT_PRICE_TABLES.exchangeRates.usd).toEqual({ microsPerMajorUnit: 1_000_000 });
    expect(Object.keys(DEFAULT_PRICE_TABLES.exchangeRates).sort()).toEqual(['aud', 'cad', 'chf', 'eur', 'gbp', 'jpy', 'usd']);
    const { twilio, resend } = DEFAULT_PRICE_TABLES;
    expect(microsOf(twilio.smsSegmentMicros, '14155550100')).toBe(8_300);
    expect(microsOf(twilio.smsSegmentMicros, '447700900123')).toBe(52_400);
    expect(microsOf(twilio.smsSegmentMicros, '4915112345678')).toBe(200_000);
    expect(microsOf(twilio.mmsMicros, '14155550100')).toBe(20_000);
    expect(microsOf(twilio.callMinuteMicros, '14155550100')).toBe(14_000);
    expect(twilio.defaultCallTimeLimitSeconds).toBe(14_400);
    expect(resend.emailMicros).toBe(900);
  });

  it.each(NANP_NON_US_CA_AREA_CODES)('prices +1 %s (outside the US and Canada) at the unknown-country default', (area) => {
    const digits = `1${area}5550100`;
    const { twilio } = DEFAULT_PRICE_TABLES;
    expect(priceForDestination(twilio.smsSegmentMicros, digits)).toEqual({ kind: 'priced', micros: twilio.smsSegmentMicros.default, prefix: `1${area}` });
    expect(microsOf(twilio.mmsMicros, digits)).toBe(twilio.mmsMicros.default);
    expect(microsOf(twilio.callMinuteMicros, digits)).toBe(twilio.callMinuteMicros.default);
  });

  it.each(REFUSED_DESTINATIONS.map((destination) => [destination.prefix, destination.what]))('refuses +%s (%s) for SMS, MMS and calls', (prefix) => {
    const digits = `${prefix}1234567`;
    const { twilio } = DEFAULT_PRICE_TABLES;
    for (const prices of [twilio.smsSegmentMicros, twilio.mmsMicros, twilio.callMinuteMicros]) {
      expect(priceForDestination(prices, digits)).toEqual({ kind: 'refused', prefix });
    }
  });

  it('refuses satellite and premium numbers but not their neighbours', () => {
    const calls = DEFAULT_PRICE_TABLES.twilio.callMinuteMicros;
    expect(priceForDestination(calls, '881631234567')).toEqual({ kind: 'refused', prefix: '881' });
    expect(priceForDestination(calls, '88216123456')).toEqual({ kind: 'refused', prefix: '882' });
    expect(priceForDestination(calls, '19005550100')).toEqual({ kind: 'refused', prefix: '1900' });
    expect(priceForDestination(calls, '449098790123')).toEqual({ kind: 'refused', prefix: '449' });
    // +1 905 is Ontario, +44 20 London, +880 Bangladesh: ordinary destinations.
    expect(priceForDestination(calls, '19055550100')).toEqual({ kind: 'priced', micros: 14_000, prefix: '1' });
    expect(priceForDestination(calls, '442079460000')).toEqual({ kind: 'priced', micros: 600_000, prefix: null });
    expect(priceForDestination(calls, '8801712345678')).toEqual({ kind: 'priced', micros: 600_000, prefix: null });
  });

  it('is frozen all the way down', () => {
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES)).toBe(true);
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES.exchangeRates)).toBe(true);
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES.exchangeRates.eur)).toBe(true);
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES.twilio.smsSegmentMicros.byCountryCode)).toBe(true);
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES.twilio.smsSegmentMicros.refusedPrefixes)).toBe(true);
    expect(Object.isFrozen(DEFAULT_REFUSED_PREFIXES)).toBe(true);
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES.resend)).toBe(true);
  });
});

describe('compilePriceTables', () => {
  it('adds USD when the operator lists only other currencies', () => {
    const tables = compilePriceTables(withField(['exchangeRates'], { eur: { microsPerMajorUnit: 1_100_000 } }));
    expect(tables.exchangeRates).toEqual({ eur: { microsPerMajorUnit: 1_100_000 }, usd: { microsPerMajorUnit: 1_000_000 } });
  });

  it.each<[string, unknown, string]>([
    ['not an object', [], 'price tables: must be an object, got an array'],
    ['null', null, 'price tables: must be an object, got null'],
    ['missing exchangeRates', withField(['exchangeRates'], undefined), 'exchangeRates: is required'],
    ['unknown top-level field', { ...validJson(), stripe: {} }, 'stripe: unknown field (expected exchangeRates, twilio, resend)'],
    ['upper-case currency', withField(['exchangeRates', 'EUR'], { microsPerMajorUnit: 1 }), 'exchangeRates["EUR"]: keys are lower-case ISO 4217 currency codes, e.g. "eur"'],
    ['rate as a float', withField(['exchangeRates', 'eur'], { microsPerMajorUnit: 1.08 }), 'exchangeRates["eur"].microsPerMajorUnit: must be a positive whole number of micro-USD per major unit (1.20 USD → 1200000), got number 1.08'],
    ['rate as a string', withField(['exchangeRates', 'eur'], { microsPerMajorUnit: '1080000' }), 'exchangeRates["eur"].microsPerMajorUnit: must be a positive whole number of micro-USD per major unit (1.20 USD → 1200000), got string "1080000"'],
    ['zero rate', withField(['exchangeRates', 'eur'], { microsPerMajorUnit: 0 }), 'exchangeRates["eur"].microsPerMajorUnit: must be a positive whole number'],
    ['rate beyond safe integers', withField(['exchangeRates', 'eur'], { microsPerMajorUnit: 2 ** 53 }), 'exchangeRates["eur"].microsPerMajorUnit: must be a positive whole number'],
    ['rate as a bare number', withField(['exchangeRates', 'eur'], 1_080_000), 'exchangeRates["eur"]: must be an object, got number 1080000'],
    ['misspelt rate field', withField(['exchangeRates', 'eur'], { micros: 1 }), 'exchangeRates["eur"].micros: unknown field (expected microsPerMajorUnit)'],
    ['USD not at par', withField(['exchangeRates', 'usd'], { microsPerMajorUnit: 999_999 }), 'exchangeRates["usd"].microsPerMajorUnit: must be 1000000: caps are kept in USD'],
    ['missing twilio table', withField(['twilio', 'mmsMicros'], undefined), 'twilio.mmsMicros: is required'],
    ['unknown twilio field', withField(['twilio', 'smsMicros'], 1), 'twilio.smsMicros: unknown field'],
    ['negative default', withField(['twilio', 'smsSegmentMicros', 'default'], -1), 'twilio.smsSegmentMicros.default: must be a positive whole number of micro-USD, got number -1'],
    ['float price', withField(['twilio', 'smsSegmentMicros', 'byCountryCode', '44'], 52_400.5), 'twilio.smsSegmentMicros.byCountryCode["44"]: must be a positive whole number of micro-USD, got number 52400.5'],
    ['country code with +', withField(['twilio', 'callMinuteMicros', 'byCountryCode', '+44'], 1), 'twilio.callMinuteMicros.byCountryCode["+44"]: keys are E.164 digit prefixes without "+", e.g. "1" or "44"'],
    ['country code starting with 0', withField(['twilio', 'mmsMicros', 'byCountryCode', '044'], 1), 'twilio.mmsMicros.byCountryCode["044"]: keys are E.164 digit prefixes'],
    ['byCountryCode as a list', withField(['twilio', 'mmsMicros', 'byCountryCode'], []), 'twilio.mmsMicros.byCountryCode: must be an object, got an array'],
    ['refusedPrefixes not a list', withField(['twilio', 'callMinuteMicros', 'refusedPrefixes'], '881'), 'twilio.callMinuteMicros.refusedPrefixes: must be a list of E.164 digit prefixes, got string "881"'],
    ['a refused prefix as a number', withField(['twilio', 'callMinuteMicros', 'refusedPrefixes'], ['870', 881]), 'twilio.callMinuteMicros.refusedPrefixes[1]: must be an E.164 digit prefix without "+", e.g. "881", got number 881'],
    ['a refused prefix with +', withField(['twilio', 'smsSegmentMicros', 'refusedPrefixes'], ['+881']), 'twilio.smsSegmentMicros.refusedPrefixes[0]: must be an E.164 digit prefix without "+", e.g. "881", got string "+881"'],
    ['a refused prefix listed twice', withField(['twilio', 'mmsMicros', 'refusedPrefixes'], ['881', '870', '881']), 'twilio.mmsMicros.refusedPrefixes[2]: "881" is listed twice'],
    ['a prefix both priced and refused', withField(['twilio', 'smsSegmentMicros', 'refusedPrefixes'], ['44']), 'twilio.smsSegmentMicros.refusedPrefixes[0]: "44" is also priced in byCountryCode; a prefix is either priced or refused'],
    ['a misspelt refusedPrefixes', withField(['twilio', 'smsSegmentMicros', 'refusedPrefix'], []), 'twilio.smsSegmentMicros.refusedPrefix: unknown field (expected default, byCountryCode, refusedPrefixes)'],
    ['TimeLimit 0', withField(['twilio', 'defaultCallTimeLimitSeconds'], 0), 'twilio.defaultCallTimeLimitSeconds: must be a whole number of seconds from 1 to 86400, got number 0'],
    ['TimeLimit above 24 h', withField(['twilio', 'defaultCallTimeLimitSeconds'], 86_401), 'twilio.defaultCallTimeLimitSeconds: must be a whole number of seconds from 1 to 86400'],
    ['email price 0', withField(['resend', 'emailMicros'], 0), 'resend.emailMicros: must be a positive whole number of micro-USD, got number 0'],
    ['email price missing', withField(['resend', 'emailMicros'], undefined), 'resend.emailMicros: is required'],
  ])('refuses %s with a one-line error naming the field', (_name, json, message) => {
    let thrown: unknown;
    try {
      compilePriceTables(json);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PriceTableError);
    const error = thrown as PriceTableError;
    expect(error.message.startsWith(message)).toBe(true);
    expect(error.message).not.toContain('\n');
    expect(error.message.startsWith(`${error.field}: `)).toBe(true);
  });
});

describe('priceForDestination', () => {
  it.each([
    ['14155550100', 8_300, '1'],
    ['18765550100', 90_000, '1876'],
    ['447700900123', 52_400, '44'],
    ['4915112345678', 100_000, null],
    ['1', 8_300, '1'],
  ])('prices +%s by the longest matching prefix', (digits, micros, prefix) => {
    expect(priceForDestination(TABLES.twilio.smsSegmentMicros, digits)).toEqual({ kind: 'priced', micros, prefix });
  });

  it('lets the longest prefix win between priced and refused ones', () => {
    const prices = compilePriceTables(
      withField(['twilio', 'callMinuteMicros'], { default: 600_000, byCountryCode: { '1': 14_000, '8816': 9_000_000 }, refusedPrefixes: ['881', '19'] }),
    ).twilio.callMinuteMicros;
    // The operator priced Iridium (+881 6) inside refused +881; Globalstar (+881 8) stays refused.
    expect(priceForDestination(prices, '881631234567')).toEqual({ kind: 'priced', micros: 9_000_000, prefix: '8816' });
    expect(priceForDestination(prices, '881812345678')).toEqual({ kind: 'refused', prefix: '881' });
    // "19" is longer than "1": every +1 9… number is refused.
    expect(priceForDestination(prices, '19055550100')).toEqual({ kind: 'refused', prefix: '19' });
    expect(priceForDestination(prices, '14155550100')).toEqual({ kind: 'priced', micros: 14_000, prefix: '1' });
  });

  it('refuses nothing when a table lists no refused prefixes', () => {
    const prices = compilePriceTables(withField(['twilio', 'callMinuteMicros', 'refusedPrefixes'], [])).twilio.callMinuteMicros;
    expect(priceForDestination(prices, '881631234567')).toEqual({ kind: 'priced', micros: 600_000, prefix: null });
  });
});

describe('refusedPrefixes in tables written before it existed', () => {
  it('applies the default refusals when the field is absent', () => {
    // test/unit/cost/helpers.ts writes no refusedPrefixes, like every older price file.
    expect(TABLES.twilio.callMinuteMicros.refusedPrefixes).toEqual(DEFAULT_REFUSED_PREFIXES);
    expect(priceForDestination(TABLES.twilio.smsSegmentMicros, '19005550100')).toEqual({ kind: 'refused', prefix: '1900' });
  });

  it("keeps the operator's own price for a prefix the defaults would refuse", () => {
    const json = withField(['twilio', 'callMinuteMicros'], { default: 600_000, byCountryCode: { '881': 12_000_000 } });
    const prices = compilePriceTables(json).twilio.callMinuteMicros;
    expect(prices.refusedPrefixes).not.toContain('881');
    expect(prices.refusedPrefixes).toContain('870');
    expect(priceForDestination(prices, '881631234567')).toEqual({ kind: 'priced', micros: 12_000_000, prefix: '881' });
  });

  it('compiles the tables of before without the field, and the same tables with it', () => {
    const old = validJson();
    const twilio = old.twilio as Record<string, Record<string, unknown>>;
    for (const table of ['smsSegmentMicros', 'mmsMicros', 'callMinuteMicros']) delete twilio[table]?.refusedPrefixes;
    expect(compilePriceTables(old)).toEqual(DEFAULT_PRICE_TABLES);
  });
});
