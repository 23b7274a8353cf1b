/**
 * The data plane's spend leases: how much of each budget account it was granted, has spent
 * and has reserved for calls in flight. The hot path (reserve, settle) is local arithmetic;
 * this class only says which messages to send to the control plane and when. Pure: time is
 * passed in (monotonic milliseconds), nothing is sent from here.
 *
 * Safety rests on two rules: a call is let through only if its estimated cost fits in what is
 * granted and not yet spent or reserved, and nothing is spent from a lease after its deadline
 * (the send time of the request that last extended it, plus the TTL, minus a margin), which is
 * before the control plane can expire it.
 */
import type { LeaseGrant, LeaseRequest, UsageReport } from '../gen/keybrake/v1/dataplane.js';

export interface AccountRef {
  readonly keyId: string;
  readonly window: string;
}

export type Outgoing = { readonly leaseRequest: LeaseRequest } | { readonly usageReport: UsageReport };

export interface LeaseBookOptions {
  readonly dataplaneId: string;
  readonly incarnation: string;
  /** A lease should cover this long at the account's recent rate of spend. */
  readonly targetPeriodMs?: number;
  /** Prefetch when what is left drops below this share of the last grant's size. */
  readonly lowWatermark?: number;
  /** Usage is reported at most this often per account (lease requests carry it too). */
  readonly reportIntervalMs?: number;
  /** An account with no call for this long gives its lease back. */
  readonly idleReturnMs?: number;
}

export type Blocked =
  | { readonly reason: 'no-grant'; readonly account: AccountRef }
  | { readonly reason: 'short'; readonly account: AccountRef; readonly windowEndsAtMs: number }
  | { readonly reason: 'refused'; readonly account: AccountRef; readonly refused: string };

export interface Reservation {
  readonly id: number;
  readonly parts: readonly { readonly accountId: string; readonly epoch: number; readonly micros: number }[];
}

interface AccountState {
  readonly ref: AccountRef;
  epoch: number;
  grantedMicros: number;
  spentMicros: number;
  reservedMicros: number;
  /** Monotonic ms after which nothing may be spent from this epoch's lease; 0 before the first grant. */
  deadlineMs: number;
  reportedMicros: number;
  lastReportAtMs: number;
  /** Seq of the last message that lowered the grant: older answers may not raise it again. */
  reduceSeq: number;
  /** Lease requests in flight: seq → send time. */
  readonly inFlight: Map<number, number>;
  lastShort: { atMs: number; windowEndsAtMs: number } | null;
  refused: { reason: string; atMs: number } | null;
  lastActivityMs: number;
  /** Spend reserved per second over the last target period, newest last. */
  readonly recent: number[];
  recentSecond: number;
  /** The quantum last asked for: the low watermark is a share of it. */
  lastQuantum: number;
}

const REFUSAL_MEMORY_MS = 1000;
/** A lease request unanswered this long is taken as lost (its stream broke, or the message was dropped). */
const LOST_REQUEST_MS = 1500;
const SHORT_MEMORY_MS = 250;

export class LeaseBook {
  private readonly accounts = new Map<string, AccountState>();
  private seq = 0;
  /**
   * Epochs are never reused within an incarnation, even by an account given back and used again:
   * a late answer about a lease that was closed must not count towards its successor.
   */
  private nextEpoch = 1;
  private nextReservationId = 1;
  private readonly targetPeriodMs: number;
  private readonly lowWatermark: number;
  private readonly reportIntervalMs: number;
  private readonly idleReturnMs: number;
  private ttlMs = 30_000;

  constructor(private readonly options: LeaseBookOptions) {
    this.targetPeriodMs = options.targetPeriodMs ?? 10_000;
    this.lowWatermark = options.lowWatermark ?? 0.25;
    this.reportIntervalMs = options.reportIntervalMs ?? 5000;
    this.idleReturnMs = options.idleReturnMs ?? 60_000;
  }

  /** Reserves `micros` on every account, or on none; says what blocks it otherwise. */
  reserve(refs: readonly AccountRef[], micros: number, nowMs: number): { reservation: Reservation; outgoing: Outgoing[] } | { blocked: Blocked } {
    const states = refs.map((ref) => this.state(ref, nowMs));
    for (const state of states) {
      this.retireIfExpired(state, nowMs);
      if (state.refused !== null && nowMs - state.refused.atMs < REFUSAL_MEMORY_MS) return { blocked: { reason: 'refused', account: state.ref, refused: state.refused.reason } };
      if (available(state, nowMs) < micros) {
        if (state.lastShort !== null && nowMs - state.lastShort.atMs < SHORT_MEMORY_MS && state.inFlight.size === 0) {
          return { blocked: { reason: 'short', account: state.ref, windowEndsAtMs: state.lastShort.windowEndsAtMs } };
        }
        return { blocked: { reason: 'no-grant', account: state.ref } };
      }
    }
    const parts = states.map((state) => {
      state.reservedMicros += micros;
      state.lastActivityMs = nowMs;
      this.recordRate(state, micros, nowMs);
      return { accountId: accountId(state.ref), epoch: state.epoch, micros };
    });
    const outgoing: Outgoing[] = this.drainRetired();
    for (const state of states) {
      const left = available(state, nowMs);
      if (state.inFlight.size === 0 && left < state.lastQuantum * this.lowWatermark) outgoing.push(this.leaseRequest(state, 0, nowMs));
    }
    return { reservation: { id: this.nextReservationId++, parts }, outgoing };
  }

  /** The call went through: `actualMicros` were spent (at most what was reserved). */
  settle(reservation: Reservation, actualMicros: number): void {
    for (const part of reservation.parts) {
      const state = this.accounts.get(part.accountId);
      if (state === undefined || state.epoch !== part.epoch) continue; // its lease is gone: the control plane counts it at risk
      state.reservedMicros -= part.micros;
      // The estimate is an upper bound by construction; should a vendor ever move more, the truth is counted.
      state.spentMicros += actualMicros;
    }
  }

  /** The call moved no money (refused by the vendor, or free after all). */
  release(reservation: Reservation): void {
    this.settle(reservation, 0);
  }

  /** A lease request for an account a call is waiting on, unless one is already in flight. */
  requestFor(ref: AccountRef, needMicros: number, nowMs: number): Outgoing[] {
    const state = this.state(ref, nowMs);
    this.retireIfExpired(state, nowMs);
    const outgoing = this.drainRetired();
    // Demand that could not be served counts towards the next quantum, or grants would stay
    // small exactly while calls are waiting.
    this.recordRate(state, needMicros, nowMs);
    // One request in flight per account: waiting calls share its answer and ask again after it.
    // A request unanswered for too long was lost with its stream: it no longer counts.
    this.forgetLostRequests(state, nowMs);
    if (state.inFlight.size > 0) return outgoing;
    state.lastShort = null;
    outgoing.push(this.leaseRequest(state, needMicros, nowMs));
    return outgoing;
  }

  onGrant(grant: LeaseGrant, nowMs: number): void {
    const state = this.accounts.get(accountId(grant));
    if (state === undefined || grant.leaseId !== this.leaseId(state)) return;
    const sentAt = state.inFlight.get(grant.seq);
    state.inFlight.delete(grant.seq);
    this.ttlMs = grant.ttlMs > 0 ? grant.ttlMs : this.ttlMs;
    if (grant.refused !== '') {
      state.refused = { reason: grant.refused, atMs: nowMs };
      return;
    }
    state.refused = null;
    state.grantedMicros = grant.seq >= state.reduceSeq ? grant.grantedTotalMicros : Math.min(state.grantedMicros, grant.grantedTotalMicros);
    if (sentAt !== undefined) state.deadlineMs = Math.max(state.deadlineMs, sentAt + grant.ttlMs - deadlineMargin(grant.ttlMs));
    state.lastShort = grant.short ? { atMs: nowMs, windowEndsAtMs: grant.windowEndsAtUnixMs } : null;
  }

  /** Another data plane needs budget: give back what is neither spent nor reserved. */
  onReclaim(ref: AccountRef, nowMs: number): Outgoing | null {
    const state = this.accounts.get(accountId(ref));
    if (state === undefined || state.grantedMicros === 0) return null;
    const keep = state.spentMicros + state.reservedMicros;
    if (keep >= state.grantedMicros) return null;
    return this.report(state, nowMs, { keep, close: false });
  }

  /** A new stream: answers to requests sent on the old one will never come. */
  onReconnect(): void {
    for (const state of this.accounts.values()) state.inFlight.clear();
  }

  /** Periodic work: usage reports, extensions before the deadline, idle returns. */
  tick(nowMs: number): Outgoing[] {
    for (const state of this.accounts.values()) {
      this.retireIfExpired(state, nowMs);
      this.forgetLostRequests(state, nowMs);
    }
    const outgoing: Outgoing[] = this.drainRetired();
    for (const state of this.accounts.values()) {
      if (state.grantedMicros === 0 && state.inFlight.size === 0) continue;
      const idle = nowMs - state.lastActivityMs >= this.idleReturnMs && state.reservedMicros === 0;
      if (idle) {
        outgoing.push(this.report(state, nowMs, { keep: null, close: true }));
        this.accounts.delete(accountId(state.ref));
        continue;
      }
      const overspent = state.spentMicros + state.reservedMicros > state.grantedMicros;
      if (state.inFlight.size === 0 && !overspent && state.deadlineMs - nowMs < this.ttlMs / 3 && state.reservedMicros === 0 && nowMs - state.lastActivityMs >= this.ttlMs / 2) {
        // Due for extension but unused lately (a foreach branch's key after its call): give it
        // back instead, one write now rather than one per extension until the idle return.
        outgoing.push(this.report(state, nowMs, { keep: null, close: true }));
        this.accounts.delete(accountId(state.ref));
        continue;
      }
      if (state.inFlight.size === 0 && (state.deadlineMs - nowMs < this.ttlMs / 3 || overspent)) {
        // Extend before the deadline; or a vendor moved more than its call reserved (an answer
        // showed it) and the grant must grow to cover it, or the ledger would not count it.
        outgoing.push(this.leaseRequest(state, 0, nowMs));
      } else if (state.spentMicros > state.reportedMicros && nowMs - state.lastReportAtMs >= this.reportIntervalMs) {
        outgoing.push(this.report(state, nowMs, { keep: null, close: false }));
      }
    }
    return outgoing;
  }

  /** Clean shutdown: report everything and give every unreserved grant back. */
  closeAll(nowMs: number): Outgoing[] {
    const outgoing: Outgoing[] = [];
    for (const state of this.accounts.values()) {
      if (state.grantedMicros === 0) continue;
      outgoing.push(
        state.reservedMicros === 0
          ? this.report(state, nowMs, { keep: null, close: true })
          : this.report(state, nowMs, { keep: state.spentMicros + state.reservedMicros, close: false }),
      );
    }
    return outgoing;
  }

  /** For tests and metrics: what this data plane holds on an account. */
  view(ref: AccountRef): { granted: number; spent: number; reserved: number; epoch: number } | null {
    const state = this.accounts.get(accountId(ref));
    return state === undefined ? null : { granted: state.grantedMicros, spent: state.spentMicros, reserved: state.reservedMicros, epoch: state.epoch };
  }

  private leaseRequest(state: AccountState, needMicros: number, nowMs: number): Outgoing {
    const seq = ++this.seq;
    const committed = state.spentMicros + state.reservedMicros;
    const quantum = Math.max(needMicros, this.periodSpend(state, nowMs), 1);
    const wantTotal = Math.max(state.grantedMicros, committed + needMicros + quantum);
    state.lastQuantum = quantum;
    const needTotal = needMicros === 0 ? 0 : committed + needMicros;
    state.inFlight.set(seq, nowMs);
    return {
      leaseRequest: {
        keyId: state.ref.keyId,
        window: state.ref.window,
        leaseId: this.leaseId(state),
        seq,
        wantTotalMicros: wantTotal,
        needTotalMicros: needTotal,
        reportedMicros: state.spentMicros,
      },
    };
  }

  private report(state: AccountState, nowMs: number, { keep, close }: { keep: number | null; close: boolean }): Outgoing {
    const seq = ++this.seq;
    state.reportedMicros = state.spentMicros;
    state.lastReportAtMs = nowMs;
    if (keep !== null && keep < state.grantedMicros) {
      // Lower the grant here first: from now on only `keep` may be spent, whatever answers arrive.
      state.grantedMicros = keep;
      state.reduceSeq = seq;
    }
    return {
      usageReport: {
        keyId: state.ref.keyId,
        window: state.ref.window,
        leaseId: this.leaseId(state),
        seq,
        reportedMicros: state.spentMicros,
        keepTotalMicros: keep ?? -1,
        close,
      },
    };
  }

  /**
   * Past its deadline a lease is lost to us: the control plane will count what we never
   * reported as at risk. Start a new epoch with nothing granted. If no call is in flight on
   * the old one, tell the control plane what was spent so the rest is not held at risk.
   */
  private retireIfExpired(state: AccountState, nowMs: number): void {
    if (state.deadlineMs === 0 || nowMs < state.deadlineMs) return;
    const oldLease = this.leaseId(state);
    const spent = state.spentMicros;
    const quiet = state.reservedMicros === 0;
    state.epoch = this.nextEpoch++;
    state.grantedMicros = 0;
    state.spentMicros = 0;
    state.reservedMicros = 0;
    state.reportedMicros = 0;
    state.deadlineMs = 0;
    state.inFlight.clear();
    state.reduceSeq = 0;
    if (quiet) this.retired.push({ usageReport: { keyId: state.ref.keyId, window: state.ref.window, leaseId: oldLease, seq: ++this.seq, reportedMicros: spent, keepTotalMicros: -1, close: true } });
  }

  /** Close reports for leases given up, to be sent with the next batch of messages. */
  private readonly retired: Outgoing[] = [];

  drainRetired(): Outgoing[] {
    return this.retired.splice(0);
  }

  private forgetLostRequests(state: AccountState, nowMs: number): void {
    for (const [seq, sentAt] of state.inFlight) if (nowMs - sentAt > LOST_REQUEST_MS) state.inFlight.delete(seq);
  }

  private leaseId(state: AccountState): string {
    return `${this.options.dataplaneId}/${this.options.incarnation}/${state.epoch}`;
  }

  private state(ref: AccountRef, nowMs: number): AccountState {
    const id = accountId(ref);
    let state = this.accounts.get(id);
    if (state === undefined) {
      state = {
        ref: { keyId: ref.keyId, window: ref.window },
        epoch: this.nextEpoch++,
        grantedMicros: 0,
        spentMicros: 0,
        reservedMicros: 0,
        deadlineMs: 0,
        reportedMicros: 0,
        lastReportAtMs: nowMs,
        reduceSeq: 0,
        inFlight: new Map(),
        lastShort: null,
        refused: null,
        lastActivityMs: nowMs,
        recent: [],
        recentSecond: Math.floor(nowMs / 1000),
        lastQuantum: 0,
      };
      this.accounts.set(id, state);
    }
    return state;
  }

  private recordRate(state: AccountState, micros: number, nowMs: number): void {
    this.rollRate(state, nowMs);
    state.recent[state.recent.length - 1]! += micros;
  }

  private periodSpend(state: AccountState, nowMs: number): number {
    this.rollRate(state, nowMs);
    return state.recent.reduce((sum, value) => sum + value, 0);
  }

  private rollRate(state: AccountState, nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    const buckets = Math.max(1, Math.round(this.targetPeriodMs / 1000));
    if (state.recent.length === 0) state.recent.push(0);
    while (state.recentSecond < second) {
      state.recent.push(0);
      state.recentSecond++;
      if (state.recent.length > buckets) state.recent.shift();
      if (second - state.recentSecond > buckets) state.recentSecond = second;
    }
  }
}

export function accountId(ref: AccountRef): string {
  return `${ref.keyId}/${ref.window}`;
}

function available(state: AccountState, nowMs: number): number {
  if (state.deadlineMs === 0 || nowMs >= state.deadlineMs) return 0;
  return state.grantedMicros - state.spentMicros - state.reservedMicros;
}

/** The data plane stops a margin before the lease's TTL runs out by its own clock. */
export function deadlineMargin(ttlMs: number): number {
  return Math.max(50, Math.floor(ttlMs / 10));
}
