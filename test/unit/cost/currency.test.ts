import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  ceilDiv,
  checkCurrencyRules,
  currencyExponent,
  minorToMicros,
  parseCurrency,
  parseMinorAmount,
  THREE_DECIMAL_CURRENCIES,
  TWO_DECIMAL_WHOLE_UNIT_CURRENCIES,
  worstCaseMicros,
  ZERO_DECIMAL_CURRENCIES,
} from '../../../core/cost/currency.js';
import { compilePriceTables, DEFAULT_PRICE_TABLES_JSON } from '../../../core/cost/price-tables.js';
import { CostRefusal } from '../../../core/cost/refusal.js';
import { TABLES, USD_ONLY } from './helpers.js';

function refusal(run: () => unknown): CostRefusal {
  try {
    run();
  } catch (error) {
    if (error instanceof CostRefusal) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('currency classes (VENDORS.md)', () => {
  it('lists the zero-, three- and two-decimal-whole-unit currencies exactly', () => {
    expect([...ZERO_DECIMAL_CURRENCIES].sort()).toEqual('bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf'.split(' '));
    expect([...THREE_DECIMAL_CURRENCIES].sort()).toEqual(['bhd', 'jod', 'kwd', 'omr', 'tnd']);
    expect([...TWO_DECIMAL_WHOLE_UNIT_CURRENCIES].sort()).toEqual(['isk', 'ugx']);
  });

  it.each([
    ['jpy', 0], ['krw', 0], ['xof', 0], ['vnd', 0],
    ['usd', 2], ['eur', 2], ['huf', 2], ['twd', 2],
    ['isk', 2], ['ugx', 2],
    ['kwd', 3], ['bhd', 3], ['tnd', 3],
  ])('%s amounts have %i decimals', (currency, exponent) => {
    expect(currencyExponent(currency)).toBe(exponent);
  });
});

describe('minorToMicros', () => {
  it.each([
    // two-decimal
    ['usd', 1n, 10_000],
    ['usd', 1999n, 19_990_000],
    ['usd', 0n, 0],
    ['eur', 1n, 10_834], // 10_833.33 → up
    ['eur', 100n, 1_083_333],
    ['eur', 3n, 32_500], // 32_499.99 → up
    // zero-decimal
    ['jpy', 1n, 6_667],
    ['jpy', 1000n, 6_667_000],
    ['krw', 10_000n, 7_330_000],
    // three-decimal: 1 KWD = 1000 fils
    ['kwd', 1000n, 3_250_000],
    ['kwd', 10n, 32_500],
    ['bhd', 10n, 26_520],
    ['bhd', 1230n, 3_261_960],
    // ISK/UGX: two-decimal amounts, 100 = 1 krona
    ['isk', 100n, 7_200],
    ['isk', 12_300n, 885_600],
    ['ugx', 100n, 270],
    ['ugx', 370_000n, 999_000],
    ['huf', 150n, 4_200],
  ])('%s %s → %i micros', (currency, amount, micros) => {
    expect(minorToMicros(amount, currency, TABLES)).toBe(micros);
  });

  it('refuses a currency without a rate instead of guessing', () => {
    const error = refusal(() => minorToMicros(100n, 'chf', TABLES));
    expect(error.code).toBe('currency_not_priced');
    expect(error.message).toContain('CHF');
    expect(refusal(() => minorToMicros(100n, 'eur', USD_ONLY)).code).toBe('currency_not_priced');
  });

  it('refuses a result beyond Number.MAX_SAFE_INTEGER micros', () => {
    // 90,071,992,547.41 USD is one cent more than MAX_SAFE_INTEGER micros.
    expect(minorToMicros(900_719_925_474n, 'usd', TABLES)).toBe(9_007_199_254_740_000);
    const error = refusal(() => minorToMicros(900_719_925_475n, 'usd', TABLES));
    expect(error.code).toBe('request_malformed');
    expect(error.message).toMatch(/out of range/);
  });

  it('carries the fractional minor units of unit_amount_decimal (extraScale)', () => {
    // 0.5 cents → 5_000 micros exactly; 0.0001 cents → 1 micro (rounded up from 0.01).
    expect(minorToMicros(5n * 10n ** 11n, 'usd', TABLES, 12)).toBe(5_000);
    expect(minorToMicros(10n ** 8n, 'usd', TABLES, 12)).toBe(1);
  });

  it('property: the estimate is the exact value rounded up — never below it, less than 1 micro above', () => {
    const currencies = Object.keys(TABLES.exchangeRates);
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 13n }),
        fc.constantFrom(...currencies),
        fc.integer({ min: 1, max: 100_000_000 }),
        (amount, currency, rate) => {
          const tables = compilePriceTables({ ...JSON.parse(JSON.stringify(DEFAULT_PRICE_TABLES_JSON)), exchangeRates: { [currency]: { microsPerMajorUnit: currency === 'usd' ? 1_000_000 : rate } } });
          const exact = amount * BigInt(tables.exchangeRates[currency]?.microsPerMajorUnit ?? 0); // × 10^-exponent
          const scale = 10n ** BigInt(currencyExponent(currency));
          let micros: bigint;
          try {
            micros = BigInt(minorToMicros(amount, currency, tables));
          } catch (error) {
            // Only ever refused for being out of range.
            expect(error).toBeInstanceOf(CostRefusal);
            expect(exact / scale).toBeGreaterThan(BigInt(Number.MAX_SAFE_INTEGER) - 1n);
            return;
          }
          expect(micros * scale).toBeGreaterThanOrEqual(exact);
          expect((micros - 1n) * scale).toBeLessThan(exact === 0n ? 1n : exact);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('ceilDiv', () => {
  it('rounds up, and only when there is a remainder', () => {
    expect(ceilDiv(0n, 7n)).toBe(0n);
    expect(ceilDiv(7n, 7n)).toBe(1n);
    expect(ceilDiv(8n, 7n)).toBe(2n);
    expect(ceilDiv(1n, 100n)).toBe(1n);
  });
});

describe('parseMinorAmount', () => {
  it.each([['0', 0n], ['1', 1n], ['007', 7n], ['9007199254740993', 9_007_199_254_740_993n]])('reads %j', (text, amount) => {
    expect(parseMinorAmount(text, 'amount')).toBe(amount);
  });

  it.each(['', ' 1', '1 ', '+1', '-1', '1e3', '1E3', '1.0', '1.5', '0x10', '１', '1_000', 'Infinity', 'NaN', '٣', '9'.repeat(33)])('refuses %j', (text) => {
    const error = refusal(() => parseMinorAmount(text, 'amount'));
    expect(error.code).toBe('request_malformed');
    expect(error.message).toMatch(/^amount /);
  });
});

describe('parseCurrency', () => {
  it('lower-cases a three-letter code', () => {
    expect(parseCurrency('USD', 'currency')).toBe('usd');
    expect(parseCurrency('eUr', 'currency')).toBe('eur');
  });

  it.each(['', 'us', 'usdx', 'us1', ' usd', 'ü$d'])('refuses %j', (text) => {
    expect(refusal(() => parseCurrency(text, 'currency')).code).toBe('request_malformed');
  });
});

describe('checkCurrencyRules', () => {
  it.each<[string, bigint, boolean, boolean]>([
    ['kwd', 1230n, false, true],
    ['kwd', 1231n, false, false],
    ['bhd', 5n, false, false],
    ['isk', 100n, false, true],
    ['isk', 150n, false, false],
    ['ugx', 1n, false, false],
    ['huf', 150n, false, true],
    ['huf', 150n, true, false],
    ['huf', 200n, true, true],
    ['twd', 99n, true, false],
    ['twd', 99n, false, true],
    ['usd', 99n, true, true],
    ['jpy', 1n, true, true],
  ])('%s %s (payout %s): accepted %s', (currency, amount, payout, accepted) => {
    const run = () => checkCurrencyRules(amount, currency, 'amount', { payout });
    if (accepted) expect(run).not.toThrow();
    else expect(refusal(run).code).toBe('request_malformed');
  });
});

describe('worstCaseMicros', () => {
  it('prices an amount of unstated currency at the dearest priced minor unit', () => {
    // Per minor unit: gbp 12_700, eur 10_834, usd 10_000, jpy 6_667, kwd 3_250, …
    expect(worstCaseMicros(1000n, TABLES)).toEqual({ micros: 12_700_000, currency: 'gbp' });
    expect(worstCaseMicros(1000n, USD_ONLY)).toEqual({ micros: 10_000_000, currency: 'usd' });
  });

  it('bounds the amount in every priced currency', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 11n }), (amount) => {
        const worst = worstCaseMicros(amount, TABLES).micros;
        for (const currency of Object.keys(TABLES.exchangeRates)) expect(worst).toBeGreaterThanOrEqual(minorToMicros(amount, currency, TABLES));
      }),
    );
  });
});
