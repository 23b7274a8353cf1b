/**
 * The control plane's cryptography. Everything derives from KEYBRAKE_MASTER_KEY, which is
 * never stored: a pepper for keyed hashes of vault keys and operator tokens, and a
 * key-encryption key that wraps the per-secret data keys of vendor credentials.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;
const KEY_BYTES = 32;
const ENVELOPE_VERSION = 1;

export interface DerivedKeys {
  /** HMAC key for vault-key and operator-token hashes. */
  readonly pepper: Buffer;
  /** AES-256-GCM key that wraps per-secret data keys. */
  readonly wrapKey: Buffer;
}

export function deriveKeys(masterKey: Buffer): DerivedKeys {
  if (masterKey.length !== KEY_BYTES) throw new RangeError(`master key must be ${KEY_BYTES} bytes, got ${masterKey.length}`);
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), info, KEY_BYTES));
  return { pepper: derive('keybrake/v1 secret hash pepper'), wrapKey: derive('keybrake/v1 vendor secret wrap key') };
}

/** HMAC-SHA256 of a secret under the pepper, hex: what is stored instead of the secret. */
export function keyedHash(pepper: Buffer, secret: string): string {
  return createHmac('sha256', pepper).update(secret, 'utf8').digest('hex');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** What a sealed secret is bound to: decrypting it under another vendor or record fails. */
export interface SecretBinding {
  readonly vendor: string;
  readonly recordId: string;
}

export interface SealedSecret {
  readonly v: typeof ENVELOPE_VERSION;
  readonly vendor: string;
  readonly record_id: string;
  /** The data key, encrypted under the wrap key: base64(iv | ciphertext | tag). */
  readonly wrapped_data_key: string;
  /** The secret, encrypted under the data key: base64(iv | ciphertext | tag). */
  readonly ciphertext: string;
}

export function sealSecret(wrapKey: Buffer, binding: SecretBinding, plaintext: Buffer): SealedSecret {
  const dataKey = randomBytes(KEY_BYTES);
  try {
    return {
      v: ENVELOPE_VERSION,
      vendor: binding.vendor,
      record_id: binding.recordId,
      wrapped_data_key: gcmEncrypt(wrapKey, dataKey, additionalData(binding, 'data-key')).toString('base64'),
      ciphertext: gcmEncrypt(dataKey, plaintext, additionalData(binding, 'secret')).toString('base64'),
    };
  } finally {
    dataKey.fill(0);
  }
}

/** Opens a sealed secret; throws if it was tampered with, rebound or sealed under another master key. */
export function openSecret(wrapKey: Buffer, sealed: SealedSecret): Buffer {
  if (sealed.v !== ENVELOPE_VERSION) throw new Error(`unsupported envelope version ${String(sealed.v)}`);
  const binding = { vendor: sealed.vendor, recordId: sealed.record_id };
  const dataKey = gcmDecrypt(wrapKey, Buffer.from(sealed.wrapped_data_key, 'base64'), additionalData(binding, 'data-key'));
  try {
    return gcmDecrypt(dataKey, Buffer.from(sealed.ciphertext, 'base64'), additionalData(binding, 'secret'));
  } finally {
    dataKey.fill(0);
  }
}

function additionalData(binding: SecretBinding, layer: 'data-key' | 'secret'): Buffer {
  return Buffer.from(JSON.stringify(['keybrake/v1', layer, binding.vendor, binding.recordId]), 'utf8');
}

function gcmEncrypt(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

function gcmDecrypt(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length < GCM_IV_BYTES + GCM_TAG_BYTES) throw new Error('sealed value is too short');
  const iv = sealed.subarray(0, GCM_IV_BYTES);
  const tag = sealed.subarray(sealed.length - GCM_TAG_BYTES);
  const body = sealed.subarray(GCM_IV_BYTES, sealed.length - GCM_TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(body), decipher.final()]);
}
