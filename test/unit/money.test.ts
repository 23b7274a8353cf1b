import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { formatMicrosAsUsd, parseUsdToMicros } from '../../core/money.js';

describe('parseUsdToMicros', () => {
  it.each([
    [300, 300_000_000],
    [300.0, 300_000_000],
    [10.99, 10_990_000],
    [0.1, 100_000],
    [32.989, 32_989_000],
    ['1.000001', 1_000_001],
    ['0.0000010', 1],
    ['12', 12_000_000],
    [0, 0],
  ])('parses %j exactly', (value, micros) => {
    expect(parseUsdToMicros(value, 'daily_usd_cap')).toBe(micros);
  });

  it('matches the decimal a Python caller computes with round(x, 2)', () => {
    // The second seed document: round(max_amount_cents / 100 * 1.1, 2).
    for (const cents of [999, 2999, 9999, 1, 12345]) {
      const dollars = Math.round((cents / 100) * 1.1 * 100) / 100;
      const [whole, fraction = ''] = String(dollars).split('.');
      expect(parseUsdToMicros(dollars, 'cap')).toBe(Number(whole) * 1_000_000 + Number(fraction.padEnd(6, '0')));
    }
  });

  it.each([
    [-1, /greater than 0/],
    ['-0.5', /greater than 0/],
    ['abc', /must be a number/],
    [null, /got null/],
    [true, /got boolean/],
    [[], /got an array/],
    [1e21, /out of range/],
    [Number.NaN, /finite/],
    ['1.0000001', /more than 6 decimal places/],
    ['1e3', /out of range/],
    ['', /must be a number/],
    ['9007199254.740992', /out of range/],
  ])('refuses %j', (value, message) => {
    expect(() => parseUsdToMicros(value, 'daily_usd_cap')).toThrow(message);
    expect(() => parseUsdToMicros(value, 'daily_usd_cap')).toThrow(/daily_usd_cap/);
  });

  it('round-trips every micro amount through its decimal text', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (micros) => {
        expect(parseUsdToMicros(formatMicrosAsUsd(micros), 'x')).toBe(micros);
      }),
    );
  });
});

describe('formatMicrosAsUsd', () => {
  it.each([
    [0, '0.00'],
    [1, '0.000001'],
    [1_500_000, '1.50'],
    [300_000_000, '300.00'],
    [-2_500_000, '-2.50'],
    [123_456_789, '123.456789'],
  ])('formats %i as %s', (micros, text) => {
    expect(formatMicrosAsUsd(micros)).toBe(text);
  });
});
