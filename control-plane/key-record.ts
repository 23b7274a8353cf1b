/**
 * A vault key's stored record and the pure rules about it. The record never holds the
 * key itself, only its keyed hash.
 */
import { randomBase62 } from '../core/secret-format.js';
import type { Vendor } from '../core/vendors.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 62^7 ms is 111 years: inverted creation times fit 7 base62 digits until 2081. */
const TIME_DIGITS = 7;
const TIME_SPAN = 62 ** TIME_DIGITS;

/**
 * A new key id, `vk_` and 20 base62 characters: 7 encode the creation time inverted, 13 are
 * random. Ids (and so the etcd keys and index entries named by them) sort newest first in
 * etcd's ascending key order: listing the newest keys is one short range read, with no sort
 * that would make etcd read the whole range (etcd sorts in memory whenever a range is sorted
 * other than ascending by key).
 */
export function newKeyId(createdAtMs: number): string {
  let inverted = Math.max(0, TIME_SPAN - 1 - createdAtMs);
  let time = '';
  for (let i = 0; i < TIME_DIGITS; i++) {
    time = BASE62[inverted % 62] + time;
    inverted = Math.floor(inverted / 62);
  }
  return `vk_${time}${randomBase62(20 - TIME_DIGITS)}`;
}

export interface KeyRecord {
  readonly id: string;
  readonly keyHash: string;
  readonly vendor: Vendor;
  readonly label: string;
  /** Normalised "METHOD /path" patterns. */
  readonly allowedEndpoints: readonly string[];
  /** 0 = no daily cap. */
  readonly dailyCapMicros: number;
  /** 0 = no lifetime budget. */
  readonly budgetMicros: number;
  /** Reservation for money-moving calls whose amount the request does not reveal; 0 refuses them. Absent in records written before it existed. */
  readonly perCallEstimateMicros?: number;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly revokedAtMs: number | null;
}

export type KeyStatusName = 'active' | 'expired' | 'revoked';

export function keyStatus(record: KeyRecord, nowMs: number): KeyStatusName {
  if (record.revokedAtMs !== null) return 'revoked';
  if (nowMs >= record.expiresAtMs) return 'expired';
  return 'active';
}

/** The cap that binds now: the smaller of the daily cap and the lifetime budget that are set. */
export function bindingCapMicros(record: Pick<KeyRecord, 'dailyCapMicros' | 'budgetMicros'>): number {
  const caps = [record.dailyCapMicros, record.budgetMicros].filter((cap) => cap > 0);
  return caps.length === 0 ? 0 : Math.min(...caps);
}
