/**
 * Self-identifying secrets: a kind prefix, random base62 body and a base62 CRC32 checksum,
 * like GitHub's tokens. A secret scanner can spot a leaked Keybrake secret offline (prefix +
 * valid checksum) with almost no false positives, and a typo is rejected without a lookup.
 */
import { createHmac, randomBytes } from 'node:crypto';

export const SECRET_KINDS = {
  /** A vault key: what a pipeline run uses in place of the vendor secret. */
  vaultKey: 'kbv_',
  /** An operator token: what operators and issuing services present to the control plane. */
  operatorToken: 'kbo_',
} as const;
export type SecretKind = keyof typeof SECRET_KINDS;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BODY_LENGTH = 36; // ~214 bits of randomness
const CHECKSUM_LENGTH = 6; // 62^6 > 2^32
const CRC_TABLE = buildCrcTable();

export function generateSecret(kind: SecretKind): string {
  const body = randomBase62(BODY_LENGTH);
  return `${SECRET_KINDS[kind]}${body}${checksum(body)}`;
}

/**
 * A vault key whose last TAG_LENGTH body characters are a keyed tag of the rest: HMAC under a
 * key derived from the control plane's pepper, which data planes hold too. A data plane can so
 * tell a key the control plane issued from one forged with a valid (public) checksum, without
 * asking anyone: a flood of made-up keys costs no lookup. 178 random bits remain.
 */
export function generateTaggedVaultKey(tagKey: Buffer): string {
  const random = randomBase62(BODY_LENGTH - TAG_LENGTH);
  const body = `${random}${tag(tagKey, random)}`;
  return `${SECRET_KINDS.vaultKey}${body}${checksum(body)}`;
}

/** True when a well-formed vault key carries the tag of its random part under `tagKey`. */
export function hasValidTag(vaultKey: string, tagKey: Buffer): boolean {
  const prefix = SECRET_KINDS.vaultKey.length;
  const random = vaultKey.slice(prefix, prefix + BODY_LENGTH - TAG_LENGTH);
  return vaultKey.slice(prefix + BODY_LENGTH - TAG_LENGTH, prefix + BODY_LENGTH) === tag(tagKey, random);
}

/** The tag key both planes derive from the pepper (never the pepper itself). */
export function vaultKeyTagKey(pepper: Buffer): Buffer {
  return createHmac('sha256', pepper).update('keybrake/v1 vault key tag').digest();
}

const TAG_LENGTH = 6;

function tag(tagKey: Buffer, random: string): string {
  const digest = createHmac('sha256', tagKey).update(random, 'ascii').digest();
  let out = '';
  for (let i = 0; i < TAG_LENGTH; i++) out += BASE62[digest[i]! % 62];
  return out;
}

/** True when the text has the kind's prefix, the right length, base62 only and a valid checksum. */
export function isWellFormedSecret(text: string, kind: SecretKind): boolean {
  const prefix = SECRET_KINDS[kind];
  if (text.length !== prefix.length + BODY_LENGTH + CHECKSUM_LENGTH || !text.startsWith(prefix)) return false;
  const body = text.slice(prefix.length, prefix.length + BODY_LENGTH);
  const sum = text.slice(prefix.length + BODY_LENGTH);
  for (const ch of body + sum) if (!BASE62.includes(ch)) return false;
  return checksum(body) === sum;
}

/** A short random base62 identifier (for public ids such as key ids). */
export function randomBase62(length: number): string {
  // Rejection sampling keeps the alphabet uniform: bytes >= 248 (= 62*4) are dropped.
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

function checksum(body: string): string {
  let value = crc32(Buffer.from(body, 'ascii'));
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function buildCrcTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}
