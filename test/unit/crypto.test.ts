import { randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { deriveKeys, keyedHash, openSecret, sealSecret, type SealedSecret } from '../../control-plane/crypto.js';

const master = randomBytes(32);
const keys = deriveKeys(master);
const binding = { vendor: 'stripe', recordId: 'cred_1' };
const secret = Buffer.from('sk_live_canary_0123456789');

describe('envelope encryption', () => {
  it('round-trips and never contains the plaintext', () => {
    const sealed = sealSecret(keys.wrapKey, binding, secret);
    expect(openSecret(keys.wrapKey, sealed).equals(secret)).toBe(true);
    const text = JSON.stringify(sealed);
    expect(text).not.toContain('sk_live_canary');
    expect(text).not.toContain(secret.toString('base64'));
  });

  it('uses a fresh data key and IV each time', () => {
    const a = sealSecret(keys.wrapKey, binding, secret);
    const b = sealSecret(keys.wrapKey, binding, secret);
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(a.wrapped_data_key).not.toBe(b.wrapped_data_key);
  });

  it('detects a flipped bit anywhere in either layer', () => {
    const sealed = sealSecret(keys.wrapKey, binding, secret);
    for (const field of ['ciphertext', 'wrapped_data_key'] as const) {
      const bytes = Buffer.from(sealed[field], 'base64');
      for (let i = 0; i < bytes.length; i++) {
        const tampered = Buffer.from(bytes);
        tampered[i]! ^= 0x01;
        const copy: SealedSecret = { ...sealed, [field]: tampered.toString('base64') };
        expect(() => openSecret(keys.wrapKey, copy), `${field} byte ${i}`).toThrow();
      }
    }
  });

  it('is bound to its vendor and record id', () => {
    const sealed = sealSecret(keys.wrapKey, binding, secret);
    expect(() => openSecret(keys.wrapKey, { ...sealed, vendor: 'twilio' })).toThrow();
    expect(() => openSecret(keys.wrapKey, { ...sealed, record_id: 'cred_2' })).toThrow();
  });

  it('cannot be opened under another master key', () => {
    const sealed = sealSecret(keys.wrapKey, binding, secret);
    expect(() => openSecret(deriveKeys(randomBytes(32)).wrapKey, sealed)).toThrow();
  });

  it('refuses a master key of the wrong size', () => {
    expect(() => deriveKeys(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('keyed hashes', () => {
  it('depend on the master key', () => {
    const other = deriveKeys(randomBytes(32));
    expect(keyedHash(keys.pepper, 'kbv_x')).toMatch(/^[0-9a-f]{64}$/);
    expect(keyedHash(keys.pepper, 'kbv_x')).toBe(keyedHash(keys.pepper, 'kbv_x'));
    expect(keyedHash(other.pepper, 'kbv_x')).not.toBe(keyedHash(keys.pepper, 'kbv_x'));
    expect(keys.pepper.equals(keys.wrapKey)).toBe(false);
  });
});
