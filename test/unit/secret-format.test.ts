import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { generateSecret, isWellFormedSecret } from '../../core/secret-format.js';

describe('self-identifying secrets', () => {
  it('has the kind prefix and validates', () => {
    const key = generateSecret('vaultKey');
    expect(key).toMatch(/^kbv_[0-9A-Za-z]{42}$/);
    expect(isWellFormedSecret(key, 'vaultKey')).toBe(true);
    expect(isWellFormedSecret(key, 'operatorToken')).toBe(false);
    expect(generateSecret('operatorToken')).toMatch(/^kbo_/);
  });

  it('is unique', () => {
    const keys = new Set(Array.from({ length: 2000 }, () => generateSecret('vaultKey')));
    expect(keys.size).toBe(2000);
  });

  it('rejects any single-character change (the checksum catches typos offline)', () => {
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 45 }), fc.integer({ min: 1, max: 61 }), (position, shift) => {
        const key = generateSecret('vaultKey');
        const original = key[position]!;
        const replaced = alphabet[(alphabet.indexOf(original) + shift) % 62]!;
        const mutated = key.slice(0, position) + replaced + key.slice(position + 1);
        expect(isWellFormedSecret(mutated, 'vaultKey')).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it.each(['', 'kbv_', 'sk_live_123', 'kbv_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'])('rejects %j', (text) => {
    expect(isWellFormedSecret(text, 'vaultKey')).toBe(false);
  });
});
