import { describe, expect, it } from 'vitest';

import {
  compilePriceTables,
  DEFAULT_PRICE_TABLES,
  DEFAULT_PRICE_TABLES_JSON,
  NANP_NON_US_CA_AREA_CODES,
  PriceTableError,
  priceForDestination,
} from '../../../core/cost/price-tables.js';
import { TABLES } from './helpers.js';

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
    expect(priceForDestination(twilio.smsSegmentMicros, '14155550100').micros).toBe(8_300);
    expect(priceForDestination(twilio.smsSegmentMicros, '447700900123').micros).toBe(52_400);
    expect(priceForDestination(twilio.smsSegmentMicros, '4915112345678').micros).toBe(200_000);
    expect(priceForDestination(twilio.mmsMicros, '14155550100').micros).toBe(20_000);
    expect(priceForDestination(twilio.callMinuteMicros, '14155550100').micros).toBe(14_000);
    expect(twilio.defaultCallTimeLimitSeconds).toBe(14_400);
    expect(resend.emailMicros).toBe(900);
  });

  it.each(NANP_NON_US_CA_AREA_CODES)('prices +1 %s (outside the US and Canada) at the unknown-country default', (area) => {
    const digits = `1${area}5550100`;
    const { twilio } = DEFAULT_PRICE_TABLES;
    expect(priceForDestination(twilio.smsSegmentMicros, digits)).toEqual({ micros: twilio.smsSegmentMicros.default, prefix: `1${area}` });
    expect(priceForDestination(twilio.mmsMicros, digits).micros).toBe(twilio.mmsMicros.default);
    expect(priceForDestination(twilio.callMinuteMicros, digits).micros).toBe(twilio.callMinuteMicros.default);
  });

  it('is frozen all the way down', () => {
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES)).toBe(true);
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES.exchangeRates)).toBe(true);
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES.exchangeRates.eur)).toBe(true);
    expect(Object.isFrozen(DEFAULT_PRICE_TABLES.twilio.smsSegmentMicros.byCountryCode)).toBe(true);
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
    expect(priceForDestination(TABLES.twilio.smsSegmentMicros, digits)).toEqual({ micros, prefix });
  });
});
