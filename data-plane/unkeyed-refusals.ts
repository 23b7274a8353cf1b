/**
 * Refusals of calls that named no known vault key (none, a forged or mistyped one, a request
 * refused before any key was looked at). Anyone who can reach a data plane can make them, as
 * fast as they like: one record each would let a stranger fill the spool until every key on
 * this data plane is refused with `audit_unavailable`. So they are sampled: a token bucket
 * (RATE per second, BURST at once) lets them have records of their own, while the spool is less
 * than half full; beyond that they are counted, and every FLUSH_MS one record per (vendor,
 * reason, method, status) says how many calls it stands for (`callCount`), at most MAX_GROUPS
 * records per flush. A stranger's flood therefore adds at most RATE + MAX_GROUPS/FLUSH_MS
 * records per second, whatever its size. Every call made with a known key, however refused,
 * keeps its own record: this class never sees those. Pure: time is passed in.
 */
import { TokenBucket } from '../core/token-bucket.js';
import type { AuditRecord } from '../gen/keybrake/v1/dataplane.js';

export interface UnkeyedRefusalsOptions {
  readonly ratePerSecond?: number;
  readonly burst?: number;
  readonly flushMs?: number;
  readonly maxGroups?: number;
}

interface Group {
  readonly vendor: string;
  readonly reason: string;
  readonly method: string;
  readonly status: number;
  calls: number;
  firstTsUnixMs: number;
}

export const OTHER_METHOD = 'OTHER';

export class UnkeyedRefusals {
  private readonly records: TokenBucket;
  private readonly flushMs: number;
  private readonly maxGroups: number;
  private groups = new Map<string, Group>();
  private lastFlushMs: number | null = null;
  /** Calls counted into aggregates so far (for /metrics). */
  aggregatedCalls = 0;

  constructor(options: UnkeyedRefusalsOptions = {}) {
    this.records = new TokenBucket(options.ratePerSecond ?? 20, options.burst ?? 200);
    this.flushMs = options.flushMs ?? 10_000;
    this.maxGroups = options.maxGroups ?? 32;
  }

  /** True when this refusal may have a record of its own; false when it must be counted instead. */
  admit(monotonicNowMs: number, spoolHalfFull: boolean): boolean {
    return !spoolHalfFull && this.records.take(monotonicNowMs);
  }

  /** Counts a refusal that got no record of its own into its group's next aggregate. */
  count(record: AuditRecord): void {
    this.aggregatedCalls++;
    // Methods come from callers: anything but the usual few shares one group.
    const method = KNOWN_METHODS.has(record.method) ? record.method : OTHER_METHOD;
    const id = `${record.vendor} ${record.reason} ${method} ${record.status}`;
    let group = this.groups.get(id);
    if (group === undefined) {
      if (this.groups.size >= this.maxGroups) {
        // More distinct kinds than records allowed: fold the rest into one catch-all.
        return this.countInto(`* * * 0`, { vendor: record.vendor, reason: 'refused', method: OTHER_METHOD, status: 0 }, record.tsUnixMs);
      }
      group = { vendor: record.vendor, reason: record.reason, method, status: record.status, calls: 0, firstTsUnixMs: record.tsUnixMs };
      this.groups.set(id, group);
    }
    group.calls++;
  }

  /** The aggregate records due now (one per group counted since the last flush), or none. */
  flush(monotonicNowMs: number, force = false): AuditRecord[] {
    if (this.lastFlushMs === null) this.lastFlushMs = monotonicNowMs;
    if (!force && monotonicNowMs - this.lastFlushMs < this.flushMs) return [];
    this.lastFlushMs = monotonicNowMs;
    if (this.groups.size === 0) return [];
    const records = [...this.groups.values()].map((group) => aggregateRecord(group));
    this.groups = new Map();
    return records;
  }

  private countInto(id: string, kind: Omit<Group, 'calls' | 'firstTsUnixMs'>, tsUnixMs: number): void {
    let group = this.groups.get(id);
    if (group === undefined) {
      group = { ...kind, calls: 0, firstTsUnixMs: tsUnixMs };
      this.groups.set(id, group);
    }
    group.calls++;
  }
}

const KNOWN_METHODS = new Set(['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS']);

function aggregateRecord(group: Group): AuditRecord {
  return {
    seq: 0, incarnation: '', tsUnixMs: group.firstTsUnixMs, keyId: '', label: '', vendor: group.vendor, method: group.method, path: '', status: group.status,
    decision: 'denied', reason: group.reason, amount: -1, currency: '', estimatedUsdMicros: 0, usdMicros: 0, idempotencyKey: '',
    vendorRequestId: '', vendorObjectId: '', stripeChargeId: '', replayed: false, latencyMs: 0, callCount: group.calls,
  };
}
