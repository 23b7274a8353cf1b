/**
 * A vault key's stored record and the pure rules about it. The record never holds the
 * key itself, only its keyed hash.
 */
import type { Vendor } from '../core/vendors.js';

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
