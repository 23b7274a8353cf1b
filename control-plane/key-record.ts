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
/** What every key id looks like (newKeyId's, and the random ids of keys issued before it). */
export const KEY_ID_PATTERN = /^vk_[0-9A-Za-z]{20}$/;

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

/**
 * A key record as stored in etcd: one short JSON object without the id (the etcd key names it)
 * and with one-letter names, zero and null fields left out. A million keys make every byte of
 * a record a megabyte in etcd (and in every etcd member's memory and snapshot).
 * h keyHash, n vendor, l label, e allowedEndpoints, d dailyCapMicros, b budgetMicros,
 * p perCallEstimateMicros, c createdAtMs, x expiresAtMs, r revokedAtMs.
 */
export function encodeKeyRecord(record: KeyRecord): string {
  const lean: Record<string, unknown> = { h: record.keyHash, n: record.vendor };
  if (record.label !== '') lean['l'] = record.label;
  lean['e'] = record.allowedEndpoints;
  if (record.dailyCapMicros !== 0) lean['d'] = record.dailyCapMicros;
  if (record.budgetMicros !== 0) lean['b'] = record.budgetMicros;
  if ((record.perCallEstimateMicros ?? 0) !== 0) lean['p'] = record.perCallEstimateMicros;
  lean['c'] = record.createdAtMs;
  lean['x'] = record.expiresAtMs;
  if (record.revokedAtMs !== null) lean['r'] = record.revokedAtMs;
  return JSON.stringify(lean);
}

/** A stored record (the lean form, or the full JSON records were written as before it). */
export function decodeKeyRecord(text: string, id: string): KeyRecord {
  const stored = JSON.parse(text) as Record<string, unknown>;
  if (typeof stored['keyHash'] === 'string') return { ...(stored as unknown as KeyRecord), id };
  const number = (name: string) => (typeof stored[name] === 'number' ? (stored[name] as number) : 0);
  return {
    id,
    keyHash: stored['h'] as string,
    vendor: stored['n'] as Vendor,
    label: typeof stored['l'] === 'string' ? stored['l'] : '',
    allowedEndpoints: Array.isArray(stored['e']) ? (stored['e'] as string[]) : [],
    dailyCapMicros: number('d'),
    budgetMicros: number('b'),
    perCallEstimateMicros: number('p'),
    createdAtMs: number('c'),
    expiresAtMs: number('x'),
    revokedAtMs: typeof stored['r'] === 'number' ? stored['r'] : null,
  };
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
