import { describe, expect, it } from 'vitest';

// @ts-expect-error -- the dashboard's browser module is plain JavaScript with JSDoc types
import { usd, vendorAmount } from '../../control-plane/dashboard/public/js/format.js';

describe('dashboard money formatting', () => {
  it('shows a vendor amount in the currency’s own units, exactly', () => {
    expect(vendorAmount(2700, 'usd')).toBe('$27.00');
    expect(vendorAmount(2700, 'eur')).toBe('€27.00');
    expect(vendorAmount(2700, 'jpy')).toBe('¥2,700');
    expect(vendorAmount(1_234_567, 'kwd')).toBe('KWD\u00a01,234.567');
    expect(vendorAmount(5, 'usd')).toBe('$0.05');
    expect(vendorAmount(-150, 'usd')).toBe('-$1.50');
    // Beyond what a double holds to the cent: still exact.
    expect(vendorAmount(9_007_199_254_740_991, 'usd')).toBe('$90,071,992,547,409.91');
  });

  it('shows a code Intl does not take as it came', () => {
    expect(vendorAmount(2700, 'not a code')).toBe('2700 not a code');
    expect(vendorAmount(2700, '')).toBe('2700');
  });

  it('keeps micro-USD to the cent at least', () => {
    expect(usd(45_000_000)).toBe('$45.00');
    expect(usd(7_900)).toBe('$0.0079');
  });
});
