import { describe, expect, it } from 'vitest';

import { parseDurationSeconds } from '../../core/duration.js';

describe('parseDurationSeconds', () => {
  it.each([
    ['4h', 14_400],
    ['90m', 5_400],
    ['3600s', 3_600],
    ['1h30m', 5_400],
    ['2d', 172_800],
    ['1d2h3m4s', 93_784],
    ['0s', 0],
  ])('parses %s as %i seconds', (text, seconds) => {
    expect(parseDurationSeconds(text, 'expires_in')).toBe(seconds);
  });

  it.each(['', '4', 'h', '4x', '1.5h', '-1h', '30m1h', '4h4h', ' 4h', '4H', 'PT4H', '9999999999999999999d'])('refuses %j naming the field', (text) => {
    expect(() => parseDurationSeconds(text, 'expires_in')).toThrow(/^\[invalid_argument\] expires_in: /);
  });
});
