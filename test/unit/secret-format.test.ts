import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { generateSecret, generateTaggedVaultKey, hasValidTag, isWellFormedSecret, vaultKeyTagKey } from '../../core/secret-format.js';

describe('self-identifying secrets', () => {
  it('has the kind prefix and validates', () => {
    const key = generateSecret('vaultKey');
    expect(key).toMatch(/^kbv_[0-9A-Za-z]{42}$/);
    expect(isWellFormedSecret(key, 'vaultKey')).toBe(true);
    expect(isWellFormedSecret(key, 'operatorToken')).toBe(false);
    expect(generateSecret('operatorToken')).toMatch(/^kbo_/);
  });

  it('tags a vault key so that only a holder of the tag key can tell it from a forged one', () => {
    const tagKey = vaultKeyTagKey(Buffer.alloc(32, 1));
    const tagged = generateTaggedVaultKey(tagKey);
    expect(isWellFormedSecret(tagged, 'vaultKey')).toBe(true);
    expect(hasValidTag(tagged, tagKey)).toBe(true);
    expect(hasValidTag(tagged, vaultKeyTagKey(Buffer.alloc(32, 2)))).toBe(false);
    // A forger with a valid (public) checksum but no tag key.
    expect(hasValidTag(generateSecret('vaultKey'), tagKey)).toBe(false);
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
